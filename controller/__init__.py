"""Ringpilot controller: the Kubernetes side of Ringpilot (CR models, operator, planes, emulator)."""

__version__ = "0.1.0"
