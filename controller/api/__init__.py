"""The public API of Ringpilot: custom-resource models, labels, identity, the policy file and a thin CR client.

The bottom layer of `controller`: it imports nothing else of ours. The agent may import it, together
with `controller.core`, `controller.storage` and `controller.settings` (pyproject's import-linter
contracts). The models here are the single source of truth for the CRDs.
"""
