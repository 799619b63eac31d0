"""The worker process: dramatiq boot, the only module with actors, and the process's resources.

Actors are thin: they hand a validated request to the engines (`orchestration`, `remediation`) or,
through a handler the agent registers with the `ringpilot.resources` entry point, to the agent.
"""
