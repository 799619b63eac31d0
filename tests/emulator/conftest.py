"""Fixtures of the emulator suite: an emulator with the sample CRDs applied.

Tests in this package take `server` when they need the CRDs and `emulator` when they do not;
`secured` is an emulator with tokens and RBAC on, `kubectl_as(token)` and `client_as()` talk to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.devkit.emulator import EmulatorServer
from tests.emulator.samples import crds
from tests.emulator.webhook_server import make_certs
from tests.fixtures.kube import Kubectl, make_kubectl


@pytest.fixture
def server(emulator: EmulatorServer) -> EmulatorServer:
    """The `emulator` fixture with `widgets` and `gears` already served."""
    for crd in crds():
        emulator.apply_crd(crd)
    return emulator


@pytest.fixture
def custom(server: EmulatorServer, kube_api: Any) -> Any:
    """`CustomObjectsApi` against `server`."""
    import kubernetes.client

    return kubernetes.client.CustomObjectsApi(kube_api)


@pytest.fixture
def core(server: EmulatorServer, kube_api: Any) -> Any:
    """`CoreV1Api` against `server`."""
    import kubernetes.client

    return kubernetes.client.CoreV1Api(kube_api)


TOKENS = {
    "admin-token": ("dev-admin", ("system:masters",)),
    "viewer-token": ("dev-viewer", ("viewers",)),
    "agent-token": ("ringpilot-agent", ()),
}


@pytest.fixture
def serving_cert(tmp_path: Path) -> Any:
    """A `ServingCert` for 127.0.0.1 signed by a fresh CA (kubectl sends tokens only over HTTPS)."""
    from controller.devkit.emulator import ServingCert

    ca, cert, key = make_certs(tmp_path / "apiserver-tls", ["127.0.0.1", "localhost"])
    ca_file = tmp_path / "apiserver-tls" / "ca.crt"
    ca_file.write_bytes(ca)
    return ServingCert(cert_file=cert, key_file=key, ca_file=ca_file)


@pytest.fixture
def secured(serving_cert: Any) -> Iterator[EmulatorServer]:
    """An HTTPS emulator with authentication and RBAC on (static tokens in `TOKENS`) and the sample CRDs."""
    from controller.devkit.emulator import AuthConfig, TokenEntry

    entries = tuple(
        TokenEntry(token=token, user=user, uid=f"uid-{user}", groups=groups) for token, (user, groups) in TOKENS.items()
    )
    with EmulatorServer(auth=AuthConfig(tokens=entries), serving_cert=serving_cert) as emulator:
        for crd in crds():
            emulator.apply_crd(crd)
        yield emulator


@pytest.fixture
def kubectl_as(secured: EmulatorServer, tmp_path: Path) -> Callable[[str], Kubectl]:
    """`kubectl_as(token)`: kubectl against `secured` with that bearer token in its kubeconfig."""

    def bound(token: str) -> Kubectl:
        config = secured.write_kubeconfig(tmp_path / f"{token[:20]}.yaml", user="tester", token=token)
        return make_kubectl(config, tmp_path / f"cache-{token[:20]}")

    return bound


def client_as(server: EmulatorServer, token: str | None) -> Any:
    """An official-client `ApiClient` for `server` sending `token` (none when None)."""
    import kubernetes.client

    configuration = kubernetes.client.Configuration(host=server.url)
    if server.serving_cert is not None and server.serving_cert.ca_file is not None:
        configuration.ssl_ca_cert = str(server.serving_cert.ca_file)
    if token is not None:
        configuration.api_key = {"authorization": token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
    return kubernetes.client.ApiClient(configuration)
