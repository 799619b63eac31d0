"""Fixtures of the emulator suite: an emulator with the sample CRDs applied.

Tests in this package take `server` when they need the CRDs and `emulator` when they do not.
"""

from __future__ import annotations

from typing import Any

import pytest

from controller.devkit.emulator import EmulatorServer
from tests.emulator.samples import crds


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
