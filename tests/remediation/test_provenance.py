"""Remediation restores; it never introduces (issue 12): the ring comes from the target, an unknown
version is a deploy request, and a Remediation's spec is locked once it acts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from kubernetes import client

from controller.api.assignment import Assignment, AssignmentSpec
from controller.api.labels import RING_NAMESPACE_LABEL
from controller.orchestration import history
from controller.planes.base import TargetRef
from controller.remediation.provenance import PgProvenance, Provenance, cleared, problem, refused_check
from controller.storage.db import Pool
from tests.remediation.inmemory import NOW
from tests.remediation.remediation_driver import Harness

S = timedelta(seconds=1)


def spec(**extra: object) -> AssignmentSpec:
    return AssignmentSpec.model_validate(
        {
            "app": "web",
            "version": "1.4.1",
            "ring": 0,
            "target": {"plane": "kubernetes", "namespace": "ring-4-global", "name": "web"},
            **extra,
        }
    )


def test_the_ring_comes_from_the_target_and_an_unknown_version_is_a_deploy_request() -> None:
    lying = problem(spec(), Provenance(ring=4, known_version=True))
    assert lying is not None and lying.field == "spec.ring" and "ring-4-global is in ring 4" in lying.reason
    unknown = problem(spec(ring=4), Provenance(ring=4, known_version=False))
    assert unknown is not None and unknown.field == "spec.version" and "use a DeploymentTask" in unknown.reason
    assert problem(spec(ring=4), Provenance(ring=4, known_version=True)) is None


def test_the_drift_check_refuses_once_and_clears_when_the_target_is_confirmed() -> None:
    asg = Assignment.from_body(
        {"metadata": {"name": "web", "namespace": "default", "generation": 1}, "spec": spec().to_wire()}
    )
    bad = problem(asg.spec, Provenance(ring=4, known_version=True))
    first = refused_check({}, asg, bad, NOW, 60)
    assert first is not None and [e.reason for e in first.events] == ["RingMismatch"]
    invalid = next(c for c in first.status["conditions"] if c["type"] == "InvalidSpec")
    assert invalid["status"] == "True" and invalid["message"].startswith("spec.ring")
    again = refused_check(first.status, asg, bad, NOW + S, 60)
    assert again is not None and again.events == () and again.audits == ()
    assert refused_check({}, asg, None, NOW, 60) is None
    from controller.remediation.detecting import CheckResult

    fine = cleared(CheckResult(status={}, next_check_at=NOW), first.status, 1, NOW + S)
    assert next(c for c in fine.status["conditions"] if c["type"] == "InvalidSpec")["status"] == "False"


async def test_a_remediation_of_an_assignment_that_lies_about_its_ring_is_denied_naming_the_field() -> None:
    async def world(_: AssignmentSpec) -> Provenance:
        return Provenance(ring=4, known_version=True)

    h = Harness(provenance=world)
    h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("fix", requestedBy="dev-operator")
    await h.reconcile("fix", NOW)
    status = h.status("fix")
    assert status["phase"] == "Denied" and status["policy"]["rule"] == "RingMismatch"
    assert "spec.ring" in status["policy"]["reason"] and h.enqueued == []


async def test_an_edit_of_a_remediation_after_it_acted_is_ignored_and_reported_once() -> None:
    h = Harness()
    h.assignment()
    h.assignment("other")
    h.workload().version = "1.4.0"
    await h.remediation("fix", requestedBy="dev-operator")
    await h.reconcile("fix", NOW)
    assert h.status("fix")["phase"] == "Remediating"
    h.body("fix")["spec"]["assignment"] = "other"
    h.body("fix")["metadata"]["generation"] += 1
    await h.work(NOW + S)
    await h.reconcile("fix", NOW + S)
    await h.reconcile("fix", NOW + 2 * S)
    locked = next(c for c in h.status("fix")["conditions"] if c["type"] == "SpecLocked")
    assert locked["status"] == "True" and "spec.assignment" in locked["message"]
    assert h.events().count("SpecLocked") == 1
    assert h.status("fix")["lockedSpec"]["assignment"] == "web"
    assert h.status("fix")["phase"] in ("Verifying", "Succeeded")
    assert [a[1] for a in h.plane.actions] == ["ring-0-lab/web"]


async def test_the_provenance_reads_ring_labels_history_recordings_and_the_fleet(kube_api: Any, db_pool: Pool) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": "ring-4-global", "labels": {RING_NAMESPACE_LABEL: "4"}}})
    source = PgProvenance(kube_api, db_pool)
    found = await source(spec())
    assert found == Provenance(ring=4, known_version=False)
    async with db_pool.connection() as conn:
        insert = (
            "INSERT INTO plane_manifests (namespace, name, app, action, manifest, image, idempotency_key) "
            "VALUES ('ring-4-global', 'web', 'web', %s, '{}', %s, %s)"
        )
        await conn.execute(insert, ("apply", "registry.example.com/team/web:6.6.6", "cid/remediation-abc-1"))
        await conn.execute(insert, ("snapshot", "registry.example.com/team/web:1.4.1", None))
    assert (await source(spec(version="6.6.6", ring=4))).known_version is False  # a remediation's own apply
    assert await source(spec(ring=4)) == Provenance(ring=4, known_version=True)  # the first sighting
    await history.record(
        db_pool,
        [
            history.row_for(
                history.TaskRef("cid", "default/t1", "u1"),
                TargetRef("kubernetes", "web", 4, "ring-4-global", "web"),
                "deploy",
                "cid/t1/Deploy/r4/a1",
                from_version="1.4.1",
                to_version="2.0.0",
                changed=1,
            )
        ],
    )
    assert (await source(spec(version="2.0.0", ring=4))).known_version is True
    async with db_pool.connection() as conn:
        await conn.execute(
            "INSERT INTO sim_devices (app, ring, address, version, previous_version, draw) "
            "VALUES ('web', 3, 'sim-web-r3-000001', '9.9.9', '1.4.1', 0.5)"
        )
    device = spec(target={"plane": "simulated", "address": "sim-web-r3-000001"}, ring=3)
    assert await source(device) == Provenance(ring=3, known_version=True)


async def test_one_list_of_the_ring_namespaces_answers_every_check_until_it_is_stale(
    kube_api: Any, db_pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": "ring-4-global", "labels": {RING_NAMESPACE_LABEL: "4"}}})
    source = PgProvenance(kube_api, db_pool)
    lists = 0
    real = source.core.list_namespaces

    async def counted(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        nonlocal lists
        lists += 1
        return await real(*args, **kwargs)

    monkeypatch.setattr(source.core, "list_namespaces", counted)
    for _ in range(20):  # a sweep checking 20 Assignments
        assert (await source(spec())).ring == 4
    assert lists == 1
    core.patch_namespace("ring-4-global", {"metadata": {"labels": {RING_NAMESPACE_LABEL: "3"}}})
    monkeypatch.setattr(source, "RINGS_TTL_SECONDS", 0.0)
    assert (await source(spec())).ring == 3 and lists == 2  # a relabelled namespace is seen once the list is stale


async def test_the_sweep_opens_nothing_for_a_lying_assignment_and_clears_it_once_confirmed() -> None:
    from tests.remediation.test_sweeping import World

    world = World()
    truth = {"ring": 4}

    async def source(_: AssignmentSpec) -> Provenance:
        return Provenance(ring=truth["ring"], known_version=True)

    world.sweeper.provenance = source
    world.add("web")
    world.workload("web").version = "1.4.0"
    report = await world.cycle(NOW)
    assert report.opened == 0 and world.cluster.remediations == {}
    invalid = next(c for c in world.status("web")["conditions"] if c["type"] == "InvalidSpec")
    assert (invalid["status"], invalid["reason"]) == ("True", "RingMismatch")
    assert [e[1] for e in world.cluster.events] == ["RingMismatch"]
    truth["ring"] = 0
    report = await world.cycle(NOW + timedelta(seconds=600))
    assert report.opened == 1
    invalid = next(c for c in world.status("web")["conditions"] if c["type"] == "InvalidSpec")
    assert invalid["status"] == "False"
