"""The worker's steps against real PostgreSQL, the API emulator and the real planes: evidence stored
immutably and verified on read, deploys and rollbacks that act once per key, Assignments written."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from kubernetes.client.exceptions import ApiException

from controller.api.deploymenttask import DeploymentTaskSpec, PlanRecord
from controller.api.group import GROUP, VERSION
from controller.api.labels import OBJECT_APP_LABEL
from controller.api.policy import load_policy
from controller.orchestration import evidencestore, history, risk
from controller.orchestration.evidence import plan_digest, sha256_of
from controller.orchestration.execution import (
    BODIES,
    StepContext,
    StepRequest,
    classify_step_error,
    execute,
)
from controller.orchestration.history import TaskRef
from controller.planes.base import PlaneError, RingResult, TargetRef
from controller.planes.fleet import seed_fleet, set_failure_rate
from controller.storage import claims
from controller.storage.audit import audit_trail
from controller.storage.db import Pool
from tests.orchestration.conftest import Cluster

POLICY = load_policy()
UID = "0123456789abcdef"


def ctx(cluster: Cluster, pool: Pool) -> StepContext:
    return StepContext(pool, cluster.admin, cluster.planes, POLICY, "test-worker")


def request(step: str, ring: int | None = None, attempt: int = 1, **extra: Any) -> StepRequest:
    base = f"cid-1/{UID[:8]}/{step}" + (f"/r{ring}" if ring is not None else "")
    fields: dict[str, Any] = {"app": "shop", "version": "2.0.0", "plane": "kubernetes"}
    fields.update(extra)
    return StepRequest(
        namespace="default",
        name="t1",
        uid=UID,
        key=f"{base}/a{attempt}",
        step_key=base,
        correlation_id="cid-1",
        ring=ring,
        **fields,
    )


async def run(c: StepContext, req: StepRequest, body: str) -> dict[str, Any] | None:
    step, fn = BODIES[body]
    return await execute(c, req, fn, step)


def create_task(cluster: Cluster, max_ring: int = 1, plane: str = "kubernetes") -> PlanRecord:
    spec = DeploymentTaskSpec.model_validate({"app": "shop", "version": "2.0.0", "maxRing": max_ring, "plane": plane})
    assessment = risk.assess(spec.risk, max_ring, "shop", POLICY)
    plan = PlanRecord(
        digest=plan_digest(spec, assessment, POLICY),
        generation=1,
        app="shop",
        version="2.0.0",
        action=spec.action,
        plane=spec.plane,
        max_ring=max_ring,
        targets=[1] * (max_ring + 1),
        submitter="dev-publisher",
    )
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DeploymentTask",
        "metadata": {"name": "t1", "namespace": "default"},
        "spec": spec.to_wire(),
    }
    created = cluster.custom.create_namespaced_custom_object(GROUP, VERSION, "default", "deploymenttasks", body)
    status = {"plan": plan.to_wire(), "risk": assessment.to_wire()}
    cluster.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", "deploymenttasks", "t1", {"status": status}
    )
    global UID
    UID = created["metadata"]["uid"]
    return plan


async def test_evidence_is_stored_once_and_every_read_checks_its_hash(db_pool: Pool) -> None:
    body = {"b": [1, 2.5, {"x": None}], "a": "é"}
    digest = await evidencestore.store(db_pool, "00000000-0000-0000-0000-000000000001", "cid", "ns/t", body)
    assert digest == sha256_of(body)
    again = await evidencestore.store(db_pool, "00000000-0000-0000-0000-000000000001", "cid", "ns/t", {"other": 1})
    assert again == digest  # the first pack stays
    stored, read = await evidencestore.load(db_pool, "00000000-0000-0000-0000-000000000001", digest)
    assert (stored, read) == (digest, body)
    assert await evidencestore.verify(db_pool, "00000000-0000-0000-0000-000000000001", digest) is None
    assert "the task expects" in str(
        await evidencestore.verify(db_pool, "00000000-0000-0000-0000-000000000001", "f" * 64)
    )
    missing = await evidencestore.verify(db_pool, "00000000-0000-0000-0000-000000000009", digest)
    assert missing is not None and "missing" in missing
    async with db_pool.connection() as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("UPDATE evidence_packs SET body = '{}'::jsonb")
    async with db_pool.connection() as conn:
        await conn.execute("ALTER TABLE evidence_packs DISABLE TRIGGER evidence_packs_immutable")
        await conn.execute("UPDATE evidence_packs SET body = jsonb_set(body, '{a}', '\"tampered\"')")
    problem = await evidencestore.verify(db_pool, "00000000-0000-0000-0000-000000000001", digest)
    assert problem is not None and "not its recorded sha256" in problem


async def test_history_keeps_the_first_row_per_step_and_target_and_finds_rollback_candidates(
    db_pool: Pool,
) -> None:
    who = TaskRef("c1", "default/t1", "uid-1")
    target = TargetRef("kubernetes", "shop", 0, "ring-0-lab", "shop")
    rows = [history.row_for(who, target, "deploy", "c1/u/Deploy/r0", from_version="1.0", to_version="2.0", changed=1)]
    await history.record(db_pool, rows)
    await history.record(db_pool, [rows[0].model_copy(update={"changed": 0, "from_version": "2.0"})])
    await history.record(db_pool, [])
    changed = await history.changed_by_task(db_pool, "c1", "uid-1", 0)
    assert [(r.from_version, r.changed) for r in changed] == [("1.0", 1)]
    assert changed[0].target_ref() == target
    assert len(await history.deployed_version(db_pool, "shop", "kubernetes", "2.0", [0, 1])) == 1
    back = history.row_for(who, target, "rollback", "c1/u/Rollback/r0", from_version="2.0", to_version="1.0", changed=1)
    await history.record(db_pool, [back])
    assert await history.deployed_version(db_pool, "shop", "kubernetes", "2.0", [0]) == []
    bulk = RingResult("shop", 4, targets=10, changed=10, whole_ring=True)
    [ring] = history.rows_for(who, "simulated", bulk, "deploy", "k", lambda action: (None, "2.0"))
    assert ring.whole_ring


async def test_deploy_poll_and_rollback_on_the_kubernetes_plane_act_once_per_key(
    cluster: Cluster, db_pool: Pool
) -> None:
    cluster.add_app("shop", range(2))
    plan = create_task(cluster)
    c = ctx(cluster, db_pool)
    report = await run(c, request("GenerateEvidence", plan_digest=plan.digest), "generate_evidence")
    assert report is not None and report["ok"], report
    _, pack = await evidencestore.load(db_pool, report["id"], report["sha256"])
    assert pack["planDigest"] == plan.digest
    assert pack["rolloutPlan"]["rings"][0]["targets"][0]["version"] == "1.0.0"
    stale = await run(c, request("GenerateEvidence", attempt=2, plan_digest="0" * 64), "generate_evidence")
    assert stale is not None and stale["ok"] is False and stale["transient"] is False

    async with await psycopg.AsyncConnection.connect(db_pool.conninfo, autocommit=True) as listener:
        await listener.execute(f"LISTEN {claims.REPORTS_CHANNEL}")
        deployed = await run(c, request("Deploy", 0), "deploy_ring")
        heard = [n.payload async for n in listener.notifies(timeout=5, stop_after=1)]
    assert deployed is not None and deployed["ok"], deployed
    assert heard == [request("Deploy", 0).uid]  # the worker wakes the controller, and writes no status for it
    task = cluster.custom.get_namespaced_custom_object(GROUP, VERSION, "default", "deploymenttasks", "t1")
    assert "stepReported" not in task.get("status", {})
    assert (deployed["targets"], deployed["changed"], deployed["assignments"]) == (1, 1, 1)
    assert cluster.image("ring-0-lab").endswith(":2.0.0")
    generation = cluster.generation("ring-0-lab")
    assert await run(c, request("Deploy", 0), "deploy_ring") is None  # redelivered: claimed already
    second = await run(c, request("Deploy", 0, attempt=2), "deploy_ring")  # a replacement attempt
    assert second is not None and second["ok"]
    assert cluster.generation("ring-0-lab") == generation  # patched once
    asg = cluster.custom.get_namespaced_custom_object(GROUP, VERSION, "default", "assignments", "ring-0-lab-shop")
    assert asg["spec"]["version"] == "2.0.0" and asg["spec"]["target"]["namespace"] == "ring-0-lab"
    assert asg["spec"]["config"]["configMap"] == "shop-config"
    assert asg["metadata"]["labels"]["ringpilot.dev/correlation-id"] == "cid-1"

    await asyncio.sleep(0.3)  # the simulated kubelet marks the rollout done
    polled = await run(c, request("Monitor", 0), "poll_ring")
    assert polled is not None and (polled["targets"], polled["updated"], polled["healthy"]) == (1, 1, 1)

    rolled = await run(c, request("Rollback", 0, scope="task"), "rollback_ring")
    assert rolled is not None and rolled["ok"] and rolled["changed"] == 1, rolled
    assert cluster.image("ring-0-lab").endswith(":1.0.0")
    asg = cluster.custom.get_namespaced_custom_object(GROUP, VERSION, "default", "assignments", "ring-0-lab-shop")
    assert asg["spec"]["version"] == "1.0.0"
    trail = [a.action for a in await audit_trail(db_pool, "cid-1")]
    assert trail.count("StepFinished") >= 4 and "StepFailed" in trail


@pytest.mark.parametrize("labels", [{}, {OBJECT_APP_LABEL: "shop"}], ids=["unlabelled", "labelled-with-its-app"])
async def test_a_target_someone_already_assigned_keeps_its_one_assignment(
    cluster: Cluster, db_pool: Pool, labels: dict[str, str]
) -> None:
    cluster.add_app("shop", range(1))
    mine = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Assignment",
        "metadata": {"name": "shop-lab-by-hand", "namespace": "default", "labels": labels},
        "spec": {
            "app": "shop",
            "version": "1.0.0",
            "ring": 0,
            "target": {"plane": "kubernetes", "namespace": "ring-0-lab", "name": "shop"},
        },
    }
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, "default", "assignments", mine)
    plan = create_task(cluster, max_ring=0)
    c = ctx(cluster, db_pool)
    assert (await run(c, request("GenerateEvidence", plan_digest=plan.digest), "generate_evidence") or {})["ok"]
    deployed = await run(c, request("Deploy", 0), "deploy_ring")
    assert deployed is not None and deployed["assignments"] == 1
    items = cluster.custom.list_namespaced_custom_object(GROUP, VERSION, "default", "assignments")["items"]
    shop = [i for i in items if i["spec"]["app"] == "shop"]
    assert [(i["metadata"]["name"], i["spec"]["version"]) for i in shop] == [("shop-lab-by-hand", "2.0.0")]


async def test_an_action_rollback_restores_what_runs_the_version(cluster: Cluster, db_pool: Pool) -> None:
    cluster.add_app("shop", range(1))
    create_task(cluster, max_ring=0)
    c = ctx(cluster, db_pool)
    assert (await run(c, request("Deploy", 0), "deploy_ring") or {})["ok"]
    withdraw = request("Rollback", 0, scope="version")
    withdraw = StepRequest(
        **{
            **withdraw.__dict__,
            "correlation_id": "cid-2",
            "key": "cid-2/x/Rollback/r0/a1",
            "step_key": "cid-2/x/Rollback/r0",
            "uid": "other",
        }
    )
    report = await run(c, withdraw, "rollback_ring")
    assert report is not None and report["changed"] == 1
    assert cluster.image("ring-0-lab").endswith(":1.0.0")


async def test_the_simulated_plane_deploys_and_rolls_back_a_ring_in_one_statement(
    cluster: Cluster, db_pool: Pool
) -> None:
    await seed_fleet(db_pool, "shop", {0: 3, 4: 600}, "1.0.0")
    c = ctx(cluster, db_pool)
    small = await run(c, request("Deploy", 0, plane="simulated"), "deploy_ring")
    assert small is not None and (small["targets"], small["changed"], small["assignments"]) == (3, 3, 3)
    big = await run(c, request("Deploy", 4, plane="simulated"), "deploy_ring")
    assert big is not None and (big["targets"], big["changed"], big["assignments"]) == (600, 600, 0)
    await set_failure_rate(db_pool, "shop", 4, 0.5, "2.0.0")
    polled = await run(c, request("Monitor", 4, plane="simulated"), "poll_ring")
    assert polled is not None and polled["targets"] == 600 and 200 < polled["healthy"] < 400
    back = await run(c, request("Rollback", 0, plane="simulated", scope="task"), "rollback_ring")
    assert back is not None and back["changed"] == 3 and back["assignments"] == 3
    asg = cluster.custom.get_namespaced_custom_object(
        GROUP, VERSION, "default", "assignments", "shop-sim-shop-r0-000000"
    )
    assert asg["spec"]["version"] == "1.0.0"


async def test_a_failing_step_is_reported_with_its_class(cluster: Cluster, db_pool: Pool) -> None:
    c = ctx(cluster, db_pool)
    report = await run(c, request("Deploy", None), "deploy_ring")
    assert report is not None and report["ok"] is False and "needs a ring" in report["error"]
    row = await claims.get(db_pool, request("Deploy", None).key)
    assert row is not None and row.finished


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (PlaneError("x", transient=True), True),
        (PlaneError("x", transient=False), False),
        (ApiException(status=503), True),
        (ApiException(status=404), False),
        (psycopg.OperationalError("down"), True),
        (TimeoutError(), True),
        (ValueError("bug"), False),
    ],
)
def test_errors_are_classified_once(error: Exception, transient: bool) -> None:
    assert classify_step_error(error)[0] is transient


def test_assignment_names_are_dns_labels() -> None:
    from controller.orchestration.assigning import assignment_name

    assert assignment_name(TargetRef("kubernetes", "web", 0, "ring-0-lab", "web")) == "ring-0-lab-web"
    long = assignment_name(TargetRef("simulated", "web", 4, address="Dev_" + "x" * 80))
    assert len(long) <= 63 and long.startswith("web-dev-x")
