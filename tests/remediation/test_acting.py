"""The worker's fix step on a real PostgreSQL: claimed once, outcomes recorded, errors classified."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from controller.api.assignment import DriftType
from controller.api.policy import RemediationLimits
from controller.planes.base import PlaneError
from controller.remediation.acting import Worker, perform, plane_key
from controller.remediation.ledger import NewAttempt, PgLedger
from controller.remediation.ports import ActRequest, act_key
from controller.storage import claims
from controller.storage.audit import audit_trail
from controller.storage.db import Pool
from tests.remediation.inmemory import NOW, FakeCluster, FakePlane, Planes, Workload, spec


@pytest.fixture
async def world(db_pool: Pool) -> Any:
    cluster = FakeCluster()
    plane = FakePlane()
    plane.put("ring-0-lab/web", Workload(version="1.4.0"))
    cluster.add_assignment("web", spec())
    rem = await cluster.create_remediation("default", {"metadata": {"name": "fix"}, "spec": {"assignment": "web"}})
    ledger = PgLedger(db_pool)
    uid = rem["metadata"]["uid"]
    await ledger.start_attempt(
        NewAttempt("a", DriftType.VERSION_MISMATCH, 1, uid, "fix", "web", 0, "Update"), RemediationLimits(), NOW, 3600
    )
    worker = Worker(cluster, Planes({"kubernetes": plane}), ledger, db_pool, "test-worker")
    return worker, plane, ActRequest("default", "fix", uid, 1, "cid-1", "web")


async def test_a_fix_runs_once_records_its_outcome_and_is_audited(world: Any, db_pool: Pool) -> None:
    worker, plane, request = world
    outcome = await perform(worker, request)
    assert outcome == {"ok": True, "changed": True, "detail": "apply done"}
    assert plane.actions == [("apply", "ring-0-lab/web", plane_key(request))]
    assert plane_key(request).startswith("cid-1/remediation-")
    stored = await claims.get(db_pool, act_key(request.uid, 1))
    assert stored is not None and stored.finished and stored.outcome == outcome
    assert await perform(worker, request) is None  # a redelivered message does nothing
    assert len(plane.actions) == 1
    [row] = await audit_trail(db_pool, "cid-1")
    assert (row.action, row.kind, row.name, row.detail) == (
        "FixExecuted",
        "Remediation",
        "fix",
        {"attempt": 1, "action": "Update", "changed": True},
    )


async def test_stale_messages_do_nothing(world: Any) -> None:
    worker, plane, request = world
    assert await perform(worker, ActRequest("default", "fix", request.uid, 2, "c", "web")) is None
    assert await perform(worker, ActRequest("default", "fix", "other-uid", 1, "c", "web")) is None
    del worker.cluster.remediations[("default", "fix")]
    assert await perform(worker, request) is None
    assert plane.actions == []


async def test_a_refused_fix_is_recorded_and_a_transient_one_is_retried(world: Any, db_pool: Pool) -> None:
    worker, plane, request = world
    plane.fail_action = PlaneError("busy", transient=True)
    with pytest.raises(PlaneError):
        await perform(worker, request)
    assert await claims.get(db_pool, act_key(request.uid, 1)) is None  # given back for the retry
    plane.fail_action = PlaneError("no recorded manifest", transient=False)
    outcome = await perform(worker, request)
    assert outcome == {"ok": False, "detail": "no recorded manifest"}
    [row] = await audit_trail(db_pool, "cid-1")
    assert row.action == "FixRefused"


async def test_a_fix_for_a_deleted_assignment_is_refused(world: Any) -> None:
    worker, _, request = world
    del worker.cluster.assignments[("default", "web")]
    assert await perform(worker, request) == {"ok": False, "detail": "Assignment web is gone"}


@pytest.mark.parametrize(
    ("action", "operation"), [("Install", "install"), ("ReapplyConfig", "reapply_config"), ("Restart", "restart")]
)
async def test_each_action_calls_its_plane_operation(db_pool: Pool, action: str, operation: str) -> None:
    cluster = FakeCluster()
    plane = FakePlane()
    plane.put("ring-0-lab/web")
    cluster.add_assignment("web", spec())
    rem = await cluster.create_remediation("default", {"metadata": {"name": "fix"}, "spec": {"assignment": "web"}})
    ledger = PgLedger(db_pool)
    uid = rem["metadata"]["uid"]
    await ledger.start_attempt(
        NewAttempt("a", DriftType.SERVICE_DOWN, 1, uid, "fix", "web", 0, action), RemediationLimits(), NOW, 3600
    )
    await perform(
        Worker(cluster, Planes({"kubernetes": plane}), ledger, db_pool, "w"),
        ActRequest("default", "fix", uid, 1, "c", "web"),
    )
    assert [a[0] for a in plane.actions] == [operation]


def test_the_actor_acts_with_the_resources_the_worker_process_opened_from_its_settings(
    database_url: str, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dramatiq.brokers.stub import StubBroker
    from dramatiq.middleware import AsyncIO

    from controller.settings import WorkerSettings
    from controller.worker.actors import remediation_act
    from controller.worker.resources import WorkerResources

    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    broker = StubBroker()
    for url in (database_url, None):
        loop, middleware = AsyncIO(), WorkerResources(WorkerSettings(database_url=url))
        loop.before_worker_boot(broker, None)
        middleware.before_worker_boot(broker, None)
        try:
            if url is not None:  # nothing pending: returns quietly
                remediation_act.fn("default", "fix", "no-such-uid", 1, "web", "cid")
            else:
                with pytest.raises(RuntimeError, match="RINGPILOT_DATABASE_URL"):
                    remediation_act.fn("default", "fix", "no-such-uid", 1, "web", "cid")
        finally:
            middleware.after_worker_shutdown(broker, None)
            loop.after_worker_shutdown(broker, None)


async def test_a_claim_left_by_a_dead_worker_is_taken_over_once_stale(world: Any, db_pool: Pool) -> None:
    worker, plane, request = world
    key = act_key(request.uid, 1)
    assert await claims.claim(db_pool, key, "cid-1", "dead-worker")
    assert await perform(worker, request) is None  # fresh: someone may still be working on it
    worker.stale_claim_seconds = 0.0
    outcome = await perform(worker, request)
    assert outcome is not None and outcome["ok"] is True and len(plane.actions) == 1


async def test_a_claim_whose_worker_process_is_gone_is_taken_over_at_once(world: Any, db_pool: Pool) -> None:
    worker, plane, request = world
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    alive = f"worker-{socket.gethostname()}-{os.getppid()}"
    assert await claims.claim(db_pool, act_key(request.uid, 1), "cid-1", alive)
    worker.owner_gone = claims.owner_gone
    assert await perform(worker, request) is None and plane.actions == []  # its owner still runs
    await claims.release(db_pool, act_key(request.uid, 1), alive)
    assert await claims.claim(db_pool, act_key(request.uid, 1), "cid-1", f"worker-{socket.gethostname()}-{gone.pid}")
    outcome = await perform(worker, request)
    assert outcome is not None and outcome["ok"] is True and len(plane.actions) == 1
