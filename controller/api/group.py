"""The API group and version every Ringpilot custom resource is served under."""

from __future__ import annotations

GROUP = "ringpilot.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
#: The `kubectl get ringpilot` category every kind belongs to.
CATEGORY = "ringpilot"
