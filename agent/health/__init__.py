"""Health seen by the agent: dependency probes for `check_health` and shared circuit breakers."""
