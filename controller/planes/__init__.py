"""Execution planes: where rollouts and fixes actually happen (Kubernetes, or a simulated fleet)."""
