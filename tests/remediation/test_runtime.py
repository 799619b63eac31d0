"""Wiring: the controller runtime starts and stops the sweep, the reconcilers use it, the dispatcher sends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from dramatiq.brokers.stub import StubBroker

from controller.api.kinds import ASSIGNMENT
from controller.api.policy import load_policy
from controller.messaging.dispatching import Dispatcher
from controller.operator.startup import dispatch_with, start_remediation, stop_remediation
from controller.planes.catalog import PlaneSet
from controller.planes.kubernetes import KubernetesPlane
from controller.reconcile.assignments import reconcile_assignment
from controller.reconcile.deps import Deps
from controller.reconcile.reconcilers import reconciler_for
from controller.remediation.ports import ACT_ACTOR, ActRequest
from controller.settings import ControllerSettings
from controller.storage.db import Pool
from tests.remediation.inmemory import NOW, FakeCluster, spec


def test_the_registry_serves_assignments_and_remediations() -> None:
    assert reconciler_for("Assignment").__name__ == "reconcile_assignment"
    assert reconciler_for("Remediation").__name__ == "reconcile_remediation"


async def test_without_postgres_or_credentials_remediation_is_off(
    db_pool: Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert await start_remediation(load_policy(None), None, None) is None
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert await start_remediation(load_policy(None), db_pool, None) is None
    assert "no Kubernetes credentials" in caplog.text
    await stop_remediation(None)


async def test_the_runtime_runs_the_sweep_until_stopped(
    db_pool: Pool, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    broker = StubBroker()
    broker.declare_queue("steps")
    runtime = await start_remediation(load_policy(None), db_pool, Dispatcher(broker), ["default"])
    assert runtime is not None and runtime.task is not None
    await asyncio.sleep(0.1)
    assert runtime.sweeper.last_relist is not None  # listed (the emulator has no CRDs: logged, retried)
    assert isinstance(runtime.ports.planes.get("kubernetes"), KubernetesPlane)
    assert runtime.ports.planes.get("kubernetes") is runtime.ports.planes.get("kubernetes")
    assert await runtime.ports.claim("nothing") is None
    await stop_remediation(runtime)
    assert runtime.task.done()
    quiet = await start_remediation(load_policy(None), db_pool, None, sweep=False)
    assert quiet is not None and quiet.task is None and quiet.ports.enqueue is None
    await stop_remediation(quiet)


def test_acts_are_sent_by_actor_name_with_ids_only() -> None:
    broker = StubBroker()
    broker.declare_queue("steps")
    sent: list[object] = []
    broker.enqueue = lambda message, delay=None: sent.append(message)  # type: ignore[method-assign]
    dispatch_with(Dispatcher(broker))(ActRequest("default", "fix", "uid-1", 2, "cid-9", "web"))
    [message] = sent
    assert message.actor_name == ACT_ACTOR and message.queue_name == "steps"  # type: ignore[attr-defined]
    assert message.kwargs == {  # type: ignore[attr-defined]
        "namespace": "default",
        "name": "fix",
        "uid": "uid-1",
        "attempt": 2,
        "assignment": "web",
        "correlation_id": "cid-9",
    }


def test_plane_sets_build_each_plane_once(db_pool: Pool) -> None:
    planes = PlaneSet(None, db_pool)
    simulated = planes.get("simulated")
    assert planes.get("simulated") is simulated


async def test_the_assignment_reconcile_leaves_synced_and_ready_to_the_sweep_and_notifies_it() -> None:
    cluster = FakeCluster()
    body = cluster.add_assignment("web", spec())
    noticed: list[dict[str, object]] = []
    deps = Deps(settings=ControllerSettings(), policy=load_policy(None))
    deps.remediation = SimpleNamespace(sweeper=SimpleNamespace(notice=noticed.append))
    first = await reconcile_assignment(ASSIGNMENT, body, deps, NOW)
    assert first.status["observedGeneration"] == 1 and [a.action for a in first.audits] == ["Accepted"]
    assert first.events == ()  # one audit row per Assignment, no Event (a rollout creates them by the dozen)
    assert not any(c["type"] in ("Ready", "Synced") for c in first.status["conditions"])
    assert noticed == [body]
    checked = [
        {"type": "Synced", "status": "False", "reason": "VersionMismatch", "message": "running 1.4.0"},
        {"type": "Ready", "status": "False", "reason": "VersionMismatch", "message": "running 1.4.0"},
    ]
    body["status"] = {**first.status, "conditions": checked}  # as the sweep's check wrote them
    second = await reconcile_assignment(ASSIGNMENT, body, deps, NOW)
    assert second.status == {} and second.events == ()
    deps.remediation = None  # no sweep in this controller: the reconcile says so
    alone = await reconcile_assignment(ASSIGNMENT, {**body, "status": {}}, deps, NOW)
    ready = next(c for c in alone.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "Accepted")
    bad = {**body, "spec": {**body["spec"], "target": {"plane": "kubernetes"}}}
    rejected = await reconcile_assignment(ASSIGNMENT, bad, deps, NOW)
    assert any(c["type"] == "InvalidSpec" for c in rejected.status["conditions"])
