"""Fixtures of the orchestration integration tests: PostgreSQL (tests/fixtures/services.py) and the API
emulator with our CRDs, the dev rings and a simulated kubelet (tests/fixtures/kube.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from controller.devkit.kubelet import SimulatedKubelet
from controller.devkit.seeding import SampleApp, apply_crds, deployment_manifest, seed_rings
from controller.orchestration.steps import MIN_LEASE_SECONDS
from controller.planes.catalog import PlaneSet
from controller.storage.db import Pool
from tests.fixtures.kube import api_client, emulator  # noqa: F401  (fixture used below)


@dataclass
class Cluster:
    admin: client.ApiClient
    planes: PlaneSet
    kubeconfig: Path

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.admin)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.admin)

    def image(self, namespace: str, name: str = "shop") -> str:
        deployment = self.apps.read_namespaced_deployment(name, namespace)
        return str(deployment.spec.template.spec.containers[0].image)

    def generation(self, namespace: str, name: str = "shop") -> int:
        return int(self.apps.read_namespaced_deployment(name, namespace).metadata.generation)

    def add_app(self, name: str, rings: range = range(5), version: str = "1.0.0") -> None:
        from controller.devkit.seeding import RING_NAMESPACES, configmap_manifest

        app = SampleApp(name, version)
        for ring in rings:
            namespace = RING_NAMESPACES[ring]
            client.CoreV1Api(self.admin).create_namespaced_config_map(namespace, configmap_manifest(app, namespace))
            self.apps.create_namespaced_deployment(namespace, deployment_manifest(app, namespace))


@pytest.fixture
def cluster(emulator: Any, db_pool: Pool, tmp_path: Path) -> Iterator[Cluster]:  # noqa: F811
    admin = api_client(emulator.url)
    apply_crds(admin)
    seed_rings(admin, apps=())
    kubelet = SimulatedKubelet(admin, rollout_delay_seconds=0.02)
    kubelet.start()
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    try:
        yield Cluster(admin, PlaneSet(admin, db_pool, "test-worker", stale_claim_seconds=MIN_LEASE_SECONDS), kubeconfig)
    finally:
        stopping = threading.Thread(target=kubelet.stop)
        stopping.start()
        time.sleep(0.2)
        emulator.stop_thread()
        stopping.join()
        admin.close()
