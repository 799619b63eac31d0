"""The dev kit: the API emulator, the simulated kubelet, embedded services, seeding and the dev stack.

Only the CLI (`ringpilot dev`, `ringpilot emulator`) and the tests import it; a production install
does without its embedded services (the `embedded` extra).
"""
