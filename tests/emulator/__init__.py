"""Conformance tests of the Kubernetes API emulator (`controller.devkit.emulator`).

Real clients drive it: the official `kubernetes` client, kubectl and Kopf.
"""
