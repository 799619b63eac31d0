"""A live operator for the tests in this folder: Ringpilot's real Kopf handlers under `kopf.testing.KopfRunner`.

The emulator serves the API from its own thread with our CRDs; PostgreSQL and Redis come from
tests/fixtures/services.py. The operator is built as controller/operator/running.py builds it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kopf
import pytest
from kopf.testing import KopfRunner
from kubernetes import client

from controller.devkit.seeding import apply_crds
from controller.operator.running import build_registry
from controller.settings import ControllerSettings

if TYPE_CHECKING:
    from controller.devkit.emulator import EmulatorServer

GROUP, VERSION, NAMESPACE = "ringpilot.dev", "v1alpha1", "default"


@dataclass
class LiveOperator:
    """The running operator's API, and helpers to create and read our objects through it."""

    custom: client.CustomObjectsApi
    core: client.CoreV1Api
    settings: ControllerSettings

    async def create(self, plural: str, body: dict[str, Any]) -> None:
        await asyncio.to_thread(self.custom.create_namespaced_custom_object, GROUP, VERSION, NAMESPACE, plural, body)

    async def get(self, plural: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = await asyncio.to_thread(
            self.custom.get_namespaced_custom_object, GROUP, VERSION, NAMESPACE, plural, name
        )
        return obj

    async def events_for(self, name: str) -> list[Any]:
        listing = await asyncio.to_thread(self.core.list_namespaced_event, NAMESPACE)
        return [e for e in listing.items if e.involved_object.name == name]


async def eventually(check: Callable[[], Awaitable[Any]], what: str, limit_seconds: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `limit_seconds`."""
    deadline = time.monotonic() + limit_seconds
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_seconds}s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def quiet_kopf(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kopf")


@pytest.fixture
def cluster(emulator: EmulatorServer, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The emulator with our CRDs; KUBECONFIG points at it, as `ringpilot dev` sets it for the controller."""
    from kubernetes.config import kube_config

    from tests.fixtures.kube import api_client

    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # The client reads KUBECONFIG once, at import: point its default at the emulator's kubeconfig too.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    api = api_client(emulator.url)
    apply_crds(api)
    yield api
    api.close()


@pytest.fixture
def operator(
    cluster: Any, database_url: str, redis_url: str, tmp_path: Path, quiet_kopf: None
) -> Iterator[LiveOperator]:
    """Ringpilot's registry under Kopf's own test toolkit, `kopf.testing.KopfRunner` (`kopf run` in a thread
    of this process, so the handlers count in the coverage run), started and ready; stopped after the test,
    with its cleanup handlers run, and any error of the operator raised here."""
    settings = ControllerSettings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path,
        liveness_port=0,
        resync_interval_seconds=60,
    )
    registry = build_registry(settings)
    started = threading.Event()

    @kopf.on.startup(registry=registry, id="test-ready")
    async def ready(**_: Any) -> None:  # registered last: Kopf invokes it after the pool and planes handlers
        started.set()

    with KopfRunner(["run", "--standalone", "--all-namespaces"], registry=registry, timeout=30) as runner:
        assert started.wait(30), "the operator did not start within 30 s"
        yield LiveOperator(client.CustomObjectsApi(cluster), client.CoreV1Api(cluster), settings)
    assert runner.exit_code == 0, runner.output
