"""The controller's side: `KubeWorld` against the emulator and PostgreSQL, the status memo that guards
against stale bodies, the registered reconcilers, and a step run with the worker's per-process resources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker

from controller.api.changerequest import ChangeRequestSpec
from controller.api.deploymenttask import Action, DeploymentTaskSpec, DeploymentTaskStatus, EvidenceRef
from controller.api.group import GROUP, VERSION
from controller.api.kinds import CHANGE_REQUEST, DEPLOYMENT_TASK
from controller.api.policy import load_policy
from controller.core.errors import Unavailable
from controller.messaging.broker import build_broker
from controller.messaging.dispatching import Dispatcher
from controller.operator.startup import OrchestrationRuntime
from controller.orchestration import evidencestore
from controller.orchestration.facts import TaskView
from controller.orchestration.observing import KubeWorld, earlier_active_task, live_task_entry
from controller.orchestration.steps import Dispatch
from controller.orchestration.transitions import ChangeRequestWrite
from controller.reconcile.changerequests import reconcile_change_request
from controller.reconcile.deploymenttasks import reconcile_deployment_task, status_fields
from controller.reconcile.deps import Deps
from controller.reconcile.statusmemo import StatusMemo
from controller.settings import ControllerSettings
from controller.storage import claims
from controller.storage.db import Pool
from tests.orchestration.conftest import Cluster
from tests.orchestration.driver import T0, FakeWorld, apply_status, task_opening

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def cr_write(digest: str = "a" * 64) -> ChangeRequestWrite:
    spec = ChangeRequestSpec(
        task="t1",
        app="shop",
        version="2.0.0",
        max_ring=2,
        risk_score=65,
        plan_digest=digest,
        submitted_by="dev-publisher",
        review_deadline=NOW + timedelta(hours=1),
    )
    return ChangeRequestWrite("t1-cab", "default", spec, "cid-1")


async def test_the_kube_world_reads_and_writes_what_the_reconcile_needs(cluster: Cluster, db_pool: Pool) -> None:
    broker = StubBroker()
    broker.declare_queue("steps")
    world = KubeWorld(cluster.admin, db_pool, cluster.planes, Dispatcher(broker))
    cluster.add_app("shop", range(2))
    assert [await world.target_count("kubernetes", "shop", r) for r in range(3)] == [1, 1, 0]
    assert await world.rollback_candidates("shop", "kubernetes", "2.0.0", [0]) == 0
    assert await world.live_tasks_of("shop") == []
    assert await world.change_request("default", "t1-cab") is None
    await world.write_change_request(cr_write(), "owner-uid")
    await world.write_change_request(cr_write("b" * 64), "owner-uid")  # re-pointed at a new plan
    cr = await world.change_request("default", "t1-cab")
    assert cr is not None and cr.spec.plan_digest == "b" * 64
    assert cr.metadata.labels["ringpilot.dev/task"] == "t1"
    await world.restore_change_request("default", "t1-cab", {"requiredApprovals": 3})
    restored = await world.change_request("default", "t1-cab")
    assert restored is not None and restored.spec.required_approvals == 3
    await world.restore_change_request("default", "gone-cab", {"requiredApprovals": 3})  # deleted meanwhile: no error
    assert await world.task_body("default", "t1") is None
    await claims.claim(db_pool, "k1", "cid-1", "w")
    await claims.finish(db_pool, "k1", {"ok": True})
    found = await world.claims(["k1", "k2"])
    assert list(found) == ["k1"] and found["k1"].finished
    digest = await evidencestore.store(db_pool, "00000000-0000-0000-0000-0000000000aa", "cid-1", "t", {"a": 1})
    assert await world.verify_evidence(EvidenceRef(id="00000000-0000-0000-0000-0000000000aa", sha256=digest)) is None
    world.dispatch(Dispatch("orchestration_poll_ring", "cid-1/x/Monitor/r0/a1", {"ring": 0, "artifact": None}), "cid-1")
    assert await world.queued_steps() == 1  # the lease of the next step sent grows with it
    message = broker.queues["steps"].get_nowait()
    assert b"orchestration_poll_ring" in message and b"artifact" not in message
    brokerless = KubeWorld(cluster.admin, db_pool, cluster.planes, None)
    assert await brokerless.queued_steps() == 0
    with pytest.raises(Unavailable, match="RINGPILOT_REDIS_URL"):
        brokerless.dispatch(Dispatch("a", "k"), "c")


def test_the_earliest_live_task_for_an_app_wins() -> None:
    from controller.orchestration.facts import TaskView

    me = TaskView(
        "ns",
        "b",
        "uid-b",
        1,
        "c",
        DeploymentTaskSpec(app="shop", version="1", max_ring=0),
        DeploymentTaskStatus(),
    )

    def raw(name: str, created: str, phase: str | None = None, app: str = "shop") -> dict[str, Any]:
        return {
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "creationTimestamp": created},
            "spec": {"app": app},
            "status": {"phase": phase} if phase else {},
        }

    mine = "2026-01-01T00:00:01Z"
    assert earlier_active_task([raw("a", "2026-01-01T00:00:00Z")], me, mine) == "ns/a"
    assert earlier_active_task([raw("a", "2026-01-01T00:00:00Z", "Succeeded")], me, mine) is None
    assert earlier_active_task([raw("c", "2026-01-01T00:00:02Z")], me, mine) is None
    assert earlier_active_task([raw("a", mine)], me, mine) == "ns/a"  # same second: by name
    assert earlier_active_task([raw("a", "2026-01-01T00:00:00Z", app="web")], me, mine) is None
    assert earlier_active_task([raw("b", "2026-01-01T00:00:00Z")], me, mine) is None  # itself


def test_a_rollback_pre_empts_the_cancelled_rollout_it_undoes_and_nothing_else() -> None:
    from controller.orchestration.facts import TaskView

    spec = DeploymentTaskSpec(app="shop", version="2", max_ring=1, action=Action.ROLLBACK)
    me = TaskView("ns", "undo", "uid-undo", 1, "c", spec, DeploymentTaskStatus())
    mine, before = "2026-01-01T00:00:01Z", "2026-01-01T00:00:00Z"

    def rollout(version: str, cancel: bool) -> dict[str, Any]:
        body = {"app": "shop", "version": version, "action": "Deploy", "cancel": cancel}
        return {"metadata": {"name": "r", "namespace": "ns", "uid": "u", "creationTimestamp": before}, "spec": body}

    assert earlier_active_task([rollout("2", cancel=True)], me, mine) is None
    assert earlier_active_task([rollout("2", cancel=False)], me, mine) == "ns/r"  # cancel it first
    assert earlier_active_task([rollout("3", cancel=True)], me, mine) == "ns/r"  # another version: not undone


def test_the_memo_replaces_the_status_of_a_body_that_predates_the_last_write() -> None:
    memo = StatusMemo(limit=2)
    body = {"metadata": {"uid": "u1", "resourceVersion": "10"}, "status": {"phase": "Deploying", "x": 1}}
    memo.remember(body, {"phase": "Monitoring", "x": None})
    stale = memo.fresh(body)
    assert stale["status"] == {"phase": "Monitoring"}
    newer = {"metadata": {"uid": "u1", "resourceVersion": "11"}, "status": {"phase": "Monitoring"}}
    assert memo.fresh(newer) is newer
    memo.remember({"metadata": {"uid": "u2", "resourceVersion": "1"}}, {})
    memo.remember({"metadata": {"uid": "u3", "resourceVersion": "1"}}, {})
    assert list(memo.entries) == ["u2", "u3"]


def test_the_memo_sees_through_a_newer_body_whose_status_write_is_still_on_its_way() -> None:
    """Kopf writes annotations, then status: between the two a body has a new resourceVersion, the old status."""
    clock = [100.0]
    memo = StatusMemo(clock=lambda: clock[0])
    read = {"phase": "Pending"}
    memo.remember({"metadata": {"uid": "u", "resourceVersion": "10"}, "status": read}, {"phase": "Deploying"})
    between = {"metadata": {"uid": "u", "resourceVersion": "11"}, "status": dict(read)}
    assert memo.fresh(between)["status"] == {"phase": "Deploying"}
    changed = {"metadata": {"uid": "u", "resourceVersion": "12"}, "status": {"phase": "Cancelled"}}
    assert memo.fresh(changed) is changed  # someone else wrote the status: the body wins
    memo.remember(changed, {})  # a pass that writes nothing keeps the last write's entry
    assert memo.fresh(between)["status"] == {"phase": "Deploying"}
    clock[0] += 10.0
    assert memo.fresh(between) is between  # that long after, the write was lost: the body is the truth


def task_body(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DeploymentTask",
        "metadata": {
            "name": "t1",
            "namespace": "default",
            "uid": "u-1",
            "generation": 1,
            "resourceVersion": "5",
            "labels": {},
        },
        "spec": {"app": "shop", "version": "2.0.0", "maxRing": 0, **spec},
    }


async def test_the_registered_reconcilers_use_the_runtime_and_its_memo() -> None:
    deps = Deps(settings=ControllerSettings(), policy=load_policy())
    alone = await reconcile_deployment_task(DEPLOYMENT_TASK, task_body(), deps, T0)
    assert any(c["reason"] == "NotOrchestrated" for c in alone.status["conditions"])
    world = FakeWorld(targets={0: 1})
    deps.orchestration = OrchestrationRuntime(world, None)  # type: ignore[arg-type]
    body = task_body()
    first = await reconcile_deployment_task(DEPLOYMENT_TASK, body, deps, T0)
    assert first.status["phase"] == "Validating"
    again = await reconcile_deployment_task(DEPLOYMENT_TASK, body, deps, T0 + timedelta(seconds=1))
    assert [e.reason for e in again.events] == []  # the stale body did not repeat the transitions
    assert len(world.sent) == 1
    invalid = await reconcile_deployment_task(DEPLOYMENT_TASK, task_body(gates=[{"ring": 3}]), deps, T0)
    assert invalid.events[0].reason == "SpecRejected"

    await world.write_change_request(cr_write(), "u-1")
    world.task_bodies["t1"] = task_opening(cr_write().spec)
    cr = world.change_requests["t1-cab"]
    cr["metadata"]["resourceVersion"] = "1"
    cr["spec"]["decisions"] = [{"approver": "dev-approver", "decision": "Approve"}]
    outcome = await reconcile_change_request(CHANGE_REQUEST, cr, deps, NOW)
    assert outcome.status["phase"] == "Approved"
    assert [e.reason for e in outcome.events] == ["Accepted", "DecisionAccepted", "ChangeApproved"]
    stale = await reconcile_change_request(CHANGE_REQUEST, cr, deps, NOW)
    assert stale.events == () and stale.status == {}
    deps.orchestration = None
    apply_status(cr, outcome)
    plain = await reconcile_change_request(CHANGE_REQUEST, cr, deps, NOW)
    assert plain.status["approvals"] == 0  # no orchestration here, so no task vouches for it: it approves nothing
    assert [e.reason for e in plain.events] == ["NotOpenedByController"]


async def test_change_request_events_for_reject_expiry_and_a_voided_approval() -> None:
    deps = Deps(settings=ControllerSettings(), policy=load_policy())
    world = FakeWorld()
    world.task_bodies["t1"] = task_opening(cr_write().spec)
    deps.orchestration = OrchestrationRuntime(world, None)  # type: ignore[arg-type]
    await world.write_change_request(cr_write(), "u-1")
    cr = world.change_requests["t1-cab"]
    cr["spec"]["decisions"] = [
        {"approver": "dev-admin", "decision": "Reject"},
        {"approver": "dev-approver", "decision": "Reject"},
    ]
    rejected = await reconcile_change_request(CHANGE_REQUEST, cr, deps, NOW)
    assert [e.reason for e in rejected.events][1:] == ["DecisionDenied", "DecisionAccepted", "ChangeRejected"]
    assert rejected.audits[1].actor == "dev-admin" and rejected.audits[1].detail["role"] == "admin"

    late_spec = cr_write().spec.model_copy(update={"task": "t2"})
    world.task_bodies["t2"] = task_opening(late_spec, uid="u2")
    await world.write_change_request(ChangeRequestWrite("t2-cab", "default", late_spec, "c"), "u2")
    late = world.change_requests["t2-cab"]
    expired = await reconcile_change_request(CHANGE_REQUEST, late, deps, NOW + timedelta(hours=2))
    assert "ChangeExpired" in [e.reason for e in expired.events]

    spec3 = cr_write().spec.model_copy(update={"task": "t3"})
    world.task_bodies["t3"] = task_opening(spec3, uid="u3")
    await world.write_change_request(ChangeRequestWrite("t3-cab", "default", spec3, "c"), "u3")
    body = world.change_requests["t3-cab"]
    body["spec"]["decisions"] = [{"approver": "dev-approver", "decision": "Approve"}]
    apply_status(body, await reconcile_change_request(CHANGE_REQUEST, body, deps, NOW))
    world.task_bodies["t3"] = task_opening(spec3.model_copy(update={"plan_digest": "c" * 64}), uid="u3")
    voided = await reconcile_change_request(CHANGE_REQUEST, body, deps, NOW)
    assert "ApprovalVoided" in [e.reason for e in voided.events]
    assert voided.status["phase"] == "Pending"
    assert body["spec"]["planDigest"] == "c" * 64  # the task's plan, written back over the old copy


def test_status_fields_keep_top_level_nones_so_they_delete() -> None:
    from controller.api.deploymenttask import DeploymentTaskStatus

    fields = status_fields(DeploymentTaskStatus(phase=None, current_step=None))
    assert fields["phase"] is None and fields["currentStep"] is None
    assert "conditions" not in fields and "observedGeneration" not in fields


def test_a_worker_process_runs_its_steps_on_one_loop_with_resources_opened_once(
    cluster: Cluster, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dramatiq.asyncio import get_event_loop_thread
    from dramatiq.middleware import AsyncIO

    from controller.settings import WorkerSettings
    from controller.worker import resources
    from controller.worker.actors import run_step

    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    cluster.add_app("shop", range(1))
    broker = StubBroker()
    loop, middleware = AsyncIO(), resources.WorkerResources(WorkerSettings(database_url=database_url))
    loop.before_worker_boot(broker, None)
    middleware.before_worker_boot(broker, None)
    kwargs = {
        "namespace": "default",
        "name": "t1",
        "uid": "u-run",
        "key": "cid-9/u-run/Monitor/r0/a1",
        "step_key": "cid-9/u-run/Monitor/r0",
        "correlation_id": "cid-9",
        "ring": 0,
        "app": "shop",
        "version": "1.0.0",
        "plane": "kubernetes",
    }
    try:
        opened = resources.current()
        thread = get_event_loop_thread()
        assert thread is not None
        report = thread.run_coroutine(run_step("poll_ring", kwargs))
        assert report is not None and report["ok"] and report["targets"] == 1, report
        assert thread.run_coroutine(run_step("poll_ring", kwargs)) is None  # claimed already
        assert resources.current() is opened and opened.pool is not None
    finally:
        middleware.after_worker_shutdown(broker, None)
        loop.after_worker_shutdown(broker, None)
    with pytest.raises(resources.ResourcesNotOpen):
        resources.current()


async def test_the_dispatcher_reads_the_steps_queue_depth_from_redis_at_most_once_a_second(redis_url: str) -> None:
    broker = build_broker(redis_url, set_global=False)
    broker.declare_queue("steps")
    dispatcher = Dispatcher(broker)
    try:
        for n in range(3):
            dispatcher.enqueue("orchestration_poll_ring", "steps", key=f"cid-q/k{n}", correlation_id="cid-q", kwargs={})
        assert await dispatcher.queued("steps") == 3
        dispatcher.enqueue("orchestration_poll_ring", "steps", key="cid-q/k3", correlation_id="cid-q", kwargs={})
        assert await dispatcher.queued("steps") == 3  # read less than a second ago
        dispatcher.DEPTH_TTL_SECONDS = 0.0
        assert await dispatcher.queued("steps") == 4
        assert await dispatcher.queued("turns") == 0
    finally:
        broker.close()


async def test_with_the_operator_index_attached_the_world_reads_live_tasks_from_it_not_the_api(
    cluster: Cluster, db_pool: Pool
) -> None:
    world = KubeWorld(cluster.admin, db_pool, cluster.planes, None)
    body = {
        "metadata": {"name": "a", "namespace": "ns", "uid": "uid-a", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"app": "shop", "version": "2", "action": "Deploy", "cancel": False, "maxRing": 3, "gates": []},
        "status": {"phase": "Deploying", "steps": [{"name": "Deploy"}]},
    }
    entry = live_task_entry(body)
    assert entry["spec"] == {"app": "shop", "version": "2", "action": "Deploy", "cancel": False}
    assert entry["status"] == {"phase": "Deploying"}  # what the conflict check reads, and no more
    world.attach({"shop": [entry]})
    assert await world.live_tasks_of("shop") == [entry]  # the emulator holds no task at all
    assert await world.live_tasks_of("web") == []
    me = TaskView(
        "ns", "b", "uid-b", 1, "c", DeploymentTaskSpec(app="shop", version="3", max_ring=0), DeploymentTaskStatus()
    )
    assert earlier_active_task(await world.live_tasks_of("shop"), me, "2026-01-01T00:00:01Z") == "ns/a"
