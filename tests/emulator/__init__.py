"""Conformance tests of the Kubernetes API emulator (`controller.emulator`).

Real clients drive it: the official `kubernetes` client, kubectl and Kopf.
"""
