"""Fixtures of the execution-plane tests: planes over a fresh PostgreSQL database and, for the
kubernetes plane, the API emulator (tests/fixtures/kube.py) with the simulated kubelet and the dev rings."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client

from controller.devkit.kubelet import SimulatedKubelet
from controller.devkit.seeding import seed_rings
from controller.planes.kubernetes import KubernetesPlane
from controller.planes.simulated import SimulatedPlane
from controller.storage.db import Pool
from tests.fixtures.kube import api_client, emulator  # noqa: F401  (fixtures used below)


@pytest.fixture
def simulated(db_pool: Pool) -> SimulatedPlane:
    """A simulated plane on this test's database, with a fixed owner so claims are predictable."""
    return SimulatedPlane(db_pool, owner="test-worker")


@dataclass
class CallLog:
    """Every request the plane's ApiClient sent: (method, url)."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    #: Injected failures: requests whose method matches and whose URL contains the text get that status.
    faults: list[tuple[str, str, int]] = field(default_factory=list)

    def fail(self, method: str, contains: str, status: int) -> None:
        self.faults.append((method, contains, status))

    def clear(self) -> None:
        self.calls.clear()

    def count(self, method: str | None = None, contains: str = "") -> int:
        return sum(1 for m, url in self.calls if (method is None or m == method) and contains in url)


@dataclass
class Cluster:
    """The emulator seeded with the dev rings, a kubelet keeping Deployment status, and a plane on it."""

    admin: client.ApiClient
    plane: KubernetesPlane
    log: CallLog
    kubelet: SimulatedKubelet

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.admin)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.admin)

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        raw: dict[str, Any] = self.admin.sanitize_for_serialization(
            self.apps.read_namespaced_deployment(name, namespace)
        )
        return raw


@pytest.fixture
def cluster(emulator: Any, db_pool: Pool) -> Iterator[Cluster]:  # noqa: F811
    """Rings 0-4 with `web` and `payments`, a kubelet, and a kubernetes plane whose calls are logged."""
    admin = api_client(emulator.url)
    seed_rings(admin)
    kubelet = SimulatedKubelet(admin, rollout_delay_seconds=0.02)
    kubelet.start()
    plane_client = api_client(emulator.url)
    log = CallLog()
    sent = plane_client.call_api

    def counting(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        log.calls.append((method, url))
        for fault_method, contains, status in log.faults:
            if method == fault_method and contains in url:
                raise client.exceptions.ApiException(status=status, reason="Injected by the test")
        return sent(method, url, *args, **kwargs)

    plane_client.call_api = counting
    try:
        yield Cluster(admin, KubernetesPlane(plane_client, db_pool, owner="test-worker"), log, kubelet)
    finally:
        stopping = threading.Thread(target=kubelet.stop)  # it waits for its watch streams to end…
        stopping.start()
        time.sleep(0.2)  # (its status writer notices the stop within 0.05 s and finishes its last write)
        emulator.stop_thread()  # …which stopping the emulator ends at once
        stopping.join()
        plane_client.close()
        admin.close()
