"""The whole loop in one process on the simulated plane and a real PostgreSQL: sweep -> Remediation ->
worker -> verification, with one observation per ring however many devices are checked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from controller.api.kinds import REMEDIATION
from controller.api.policy import load_policy
from controller.planes.fleet import default_config_sha256, device_address, inject_drift, seed_fleet
from controller.planes.simulated import SimulatedPlane
from controller.reconcile.deps import Deps
from controller.reconcile.remediations import reconcile_with
from controller.remediation.acting import Worker, perform
from controller.remediation.ledger import PgLedger
from controller.remediation.ports import ActRequest, RemediationPorts
from controller.remediation.sweeping import DriftSweeper
from controller.settings import ControllerSettings
from controller.storage import claims
from controller.storage.db import Pool
from tests.remediation.inmemory import NOW, FakeCluster

S = timedelta(seconds=1)


class CountingPlane(SimulatedPlane):
    calls = 0

    async def observe(self, targets: Any) -> Any:
        CountingPlane.calls += 1
        return await super().observe(targets)


async def test_drift_on_simulated_devices_is_found_per_ring_fixed_and_verified(db_pool: Pool) -> None:
    await seed_fleet(db_pool, "kiosk", {0: 20, 1: 20}, "2.0.0", artifact="registry.example.com/kiosk")
    cluster = FakeCluster()
    for ring in (0, 1):
        for i in range(20):
            address = device_address("kiosk", ring, i)
            cluster.add_assignment(
                address,
                {
                    "app": "kiosk",
                    "version": "2.0.0",
                    "ring": ring,
                    "criticality": "critical",
                    "target": {"plane": "simulated", "address": address},
                    "config": {"sha256": default_config_sha256("kiosk")},
                },
            )
    plane = CountingPlane(db_pool, owner="test")
    planes: Any = type("P", (), {"get": staticmethod(lambda name: plane)})()
    ledger = PgLedger(db_pool)
    policy = load_policy(None)
    sweeper = DriftSweeper(cluster, planes, ledger, policy, tick=0.01)
    await sweeper.relist(NOW)
    await sweeper.cycle(NOW)
    assert CountingPlane.calls == 2  # 40 devices, 2 rings
    broken = device_address("kiosk", 0, 7)
    assert await inject_drift(db_pool, "kiosk", broken, version="1.9.0")
    await sweeper.cycle(NOW + 60 * S)
    [(key, rem)] = cluster.remediations.items()
    assert rem["spec"]["driftType"] == "VersionMismatch" and rem["spec"]["assignment"] == broken
    sent: list[ActRequest] = []

    async def claim(k: str) -> Any:
        return await claims.get(db_pool, k)

    ports = RemediationPorts(
        cluster, planes, ledger, policy, claim=claim, enqueue=sent.append, expedite=sweeper.expedite
    )
    deps = Deps(settings=ControllerSettings(), policy=policy)
    worker = Worker(cluster, planes, ledger, db_pool, "test-worker")

    async def reconcile(at: Any) -> None:
        body = cluster.remediations[key]
        outcome = await reconcile_with(ports, REMEDIATION, body, deps, at)
        body["status"].update({k: v for k, v in outcome.status.items() if v is not None})
        body["metadata"]["labels"].update(outcome.labels)

    await reconcile(NOW + 61 * S)
    assert cluster.remediations[key]["status"]["phase"] == "Remediating"
    outcome = await perform(worker, sent[0])
    assert outcome is not None and (outcome["ok"], outcome["changed"]) == (True, True)
    await reconcile(NOW + 62 * S)
    await reconcile(NOW + 63 * S)
    await reconcile(NOW + 94 * S)  # dev settle: 30 s
    status = cluster.remediations[key]["status"]
    assert status["phase"] == "Succeeded" and status["verification"]["verified"] is True
    await sweeper.cycle(NOW + 95 * S)
    assert cluster.assignments[("default", broken)]["status"]["sync"] == "Synced"
