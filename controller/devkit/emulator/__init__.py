"""A Kubernetes API emulator for tests and `ringpilot dev`: an aiohttp server on loopback.

It behaves like kube-apiserver for what an operator uses (discovery, CRUD, patches, status
subresource, finalizers, watches, selectors, CRD schemas, server-side printing, OpenAPI v3; opt-in tokens,
RBAC and impersonation; admission webhooks), driven by Kopf, the `kubernetes` client and kubectl.
Start it with `EmulatorServer` or `python -m controller.devkit.emulator`.
"""

from __future__ import annotations

from .apierrors import ApiError, FieldError
from .authn import AuthConfig, TokenEntry, load_token_file
from .negotiation import RequestRecord
from .resourcetypes import ResourceType
from .server import EmulatorServer, ServingCert, Snapshots, kubeconfig
from .verbs import Cluster

__all__ = [
    "ApiError",
    "AuthConfig",
    "Cluster",
    "EmulatorServer",
    "FieldError",
    "RequestRecord",
    "ResourceType",
    "ServingCert",
    "Snapshots",
    "TokenEntry",
    "kubeconfig",
    "load_token_file",
]
