"""The public API of Ringpilot: custom-resource models, the policy file and a thin CR client.

This package is the only part of `controller` that `agent` may import (see pyproject's
import-linter contracts). The models here are the single source of truth for the CRDs.
"""
