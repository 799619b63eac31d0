"""The drift sweep on fakes: batched observation, due checks by criticality, modes, opening Remediations."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from controller.api.policy import load_policy
from controller.core.errors import Unavailable
from controller.planes.base import PlaneError
from controller.remediation.ledger import RecordInfo
from controller.remediation.sweeping import DriftSweeper, relist_seconds, tick_seconds
from controller.storage.audit import AuditEvent
from tests.remediation.inmemory import NOW, FakeCluster, FakePlane, MemoryLedger, Planes, Workload, spec


@dataclass
class World:
    cluster: FakeCluster = field(default_factory=FakeCluster)
    plane: FakePlane = field(default_factory=FakePlane)
    ledger: MemoryLedger = field(default_factory=MemoryLedger)
    audits: list[AuditEvent] = field(default_factory=list)
    sweeper: DriftSweeper = field(init=False)

    def __post_init__(self) -> None:
        async def audit(event: AuditEvent) -> None:
            self.audits.append(event)

        self.sweeper = DriftSweeper(
            self.cluster, Planes({"kubernetes": self.plane}), self.ledger, load_policy(None), audit=audit, tick=0.01
        )

    def add(self, name: str, ring: int = 0, namespace: str = "ring-0-lab", **extra: Any) -> dict[str, Any]:
        self.plane.put(f"{namespace}/{name}", Workload(repository=f"registry.example.com/team/{name}"))
        return self.cluster.add_assignment(name, spec(app=name, ring=ring, namespace=namespace, **extra))

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.cluster.assignments[("default", name)]["status"]
        return status

    def workload(self, name: str, namespace: str = "ring-0-lab") -> Workload:
        return self.plane.workloads[f"{namespace}/{name}"]

    async def cycle(self, at: datetime, relist: bool = False) -> Any:
        if relist or self.sweeper.last_relist is None:
            await self.sweeper.relist(at)
        return await self.sweeper.cycle(at)


@pytest.fixture
def world() -> World:
    return World()


async def test_one_observation_per_namespace_and_no_writes_when_nothing_changed(world: World) -> None:
    for ns in ("ring-0-lab", "ring-1-canary", "ring-2-pilot"):
        for i in range(10):
            world.add(f"app{i}-{ns[:6]}", ring=int(ns[5]), namespace=ns)
    report = await world.cycle(NOW)
    assert (report.checked, report.groups, report.written) == (30, 3, 30)
    assert sorted(len(call) for call in world.plane.observe_calls) == [10, 10, 10]
    assert all(world.status(n)["sync"] == "Synced" for _, n in world.cluster.assignments)
    world.plane.observe_calls.clear()
    world.cluster.calls.clear()
    report = await world.cycle(NOW + timedelta(seconds=61))
    assert (report.checked, report.groups, report.written) == (30, 3, 0)
    assert world.cluster.calls == ["list tasks"]  # reads grow with namespaces; nothing written


async def test_checks_are_due_by_criticality(world: World) -> None:
    world.add("fast", criticality="critical")
    world.add("slow", namespace="ring-1-canary", ring=1, criticality="low")
    await world.cycle(NOW)
    assert [e.resource.metadata.name for e in world.sweeper.due(NOW + timedelta(seconds=30))] == []
    assert [e.resource.metadata.name for e in world.sweeper.due(NOW + timedelta(seconds=60))] == ["fast"]
    assert {e.resource.metadata.name for e in world.sweeper.due(NOW + timedelta(seconds=900))} == {"fast", "slow"}


async def test_entries_of_an_observed_namespace_due_soon_ride_along(world: World) -> None:
    world.add("fast", criticality="critical")
    world.add("standard", criticality="standard")  # due after 300 s; 10 % of it is 30 s
    await world.cycle(NOW)
    world.sweeper.entries[
        next(u for u, e in world.sweeper.entries.items() if e.resource.metadata.name == "standard")
    ].next_check_at = NOW + timedelta(seconds=80)
    assert {e.resource.metadata.name for e in world.sweeper.due(NOW + timedelta(seconds=60))} == {"fast", "standard"}


async def test_the_first_check_of_a_new_assignment_is_its_one_status_write(world: World) -> None:
    world.add("web")  # as a rollout creates it: no status yet, and no Kopf reconcile
    await world.cycle(NOW)
    status = world.status("web")
    assert status["observedGeneration"] == 1 and status["sync"] == "Synced"
    assert {c["type"] for c in status["conditions"]} == {"Synced", "Ready"}
    assert world.cluster.calls.count("patch assignment status") == 1
    assert [(a.action, a.reason) for a in world.audits][:1] == [("Accepted", "Assignment accepted")]
    await world.cycle(NOW + timedelta(seconds=60), relist=True)
    assert world.cluster.calls.count("patch assignment status") == 1, "a settled Assignment is not written again"


async def test_a_changed_spec_noticed_from_the_watch_is_checked_and_observed_at_once(world: World) -> None:
    body = world.add("web")
    await world.cycle(NOW)
    stored = world.cluster.assignments[("default", "web")]
    stored["spec"]["version"] = "1.5.0"
    stored["metadata"]["generation"] = 2
    world.sweeper.notice(copy.deepcopy(stored))
    await world.cycle(NOW + timedelta(seconds=1))  # due at once, long before its interval
    status = world.status("web")
    assert status["observedGeneration"] == 2 and status["sync"] == "Drifted"
    assert [a.action for a in world.audits].count("Accepted") == 1, "accepted once, when it was new"
    assert body["metadata"]["uid"] in world.sweeper.entries


async def test_a_restarted_sweep_spreads_the_checks_of_a_checked_fleet_over_one_interval(world: World) -> None:
    for i in range(40):
        world.add(f"app{i}", criticality="critical")  # checked every 900 s under the default policy
    await world.cycle(NOW)
    writes = world.cluster.calls.count("patch assignment status")
    assert writes == 40  # each new one checked at once: its first status
    restarted = World(cluster=world.cluster, plane=world.plane)  # a new controller process, same fleet
    first = await restarted.cycle(NOW + timedelta(seconds=1))
    assert first.checked < 10, "a restart checks the whole fleet at once"
    new = world.add("fresh", criticality="critical")
    restarted.sweeper.notice(copy.deepcopy(new))
    await restarted.cycle(NOW + timedelta(seconds=2))
    assert world.status("fresh").get("observedGeneration") == 1, "a new Assignment is still checked at once"
    checked = first.checked
    for minute in range(1, 16):
        checked += (await restarted.cycle(NOW + timedelta(seconds=1 + 60 * minute))).checked
    assert checked >= 40, "every Assignment is checked within one interval of the restart"


async def test_enforce_opens_one_remediation_for_new_drift(world: World) -> None:
    body = world.add("web")
    await world.cycle(NOW)
    world.workload("web").version = "1.4.0"
    report = await world.cycle(NOW + timedelta(seconds=60))
    assert report.opened == 1 and report.drifted == ["default/web"]
    status = world.status("web")
    assert status["sync"] == "Drifted" and status["drift"]["type"] == "VersionMismatch"
    assert status["drift"]["detectedAt"] == "2026-11-25T12:01:00Z"
    [(key, rem)] = world.cluster.remediations.items()
    assert status["remediation"] == key[1] and key[1].startswith("web-versionmismatch-")
    assert rem["spec"] == {
        "assignment": "web",
        "driftType": "VersionMismatch",
        "action": "Update",
        "requestedBy": "system:ringpilot",
        "reason": "Drift detected: running 1.4.0, want 1.4.1",
        "correlationId": rem["spec"]["correlationId"],
        "dryRun": False,
    }
    assert rem["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    record = world.ledger.records_[key]
    assert record.opened_by_loop and record.assignment_uid == body["metadata"]["uid"]
    assert [e[1] for e in world.cluster.events] == ["DriftDetected", "RemediationOpened"]
    assert [a.action for a in world.audits] == ["Accepted", "DriftDetected", "RemediationOpened"]
    assert world.audits[0].correlation_id == "cid-web"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "VersionMismatch")

    world.cluster.events.clear()
    world.ledger.records_[key] = RecordInfo(**{**record.__dict__, "phase": "Verifying"})
    report = await world.cycle(NOW + timedelta(seconds=120), relist=True)
    assert report.opened == 0 and len(world.cluster.remediations) == 1 and world.cluster.events == []
    assert "is Verifying" in next(c for c in world.status("web")["conditions"] if c["type"] == "Synced")["message"]


async def test_warn_records_and_tells_but_does_not_remediate(world: World) -> None:
    world.add("web", drift={"mode": "Warn"})
    world.workload("web").config_sha256 = "b" * 64
    await world.cycle(NOW)
    assert world.status("web")["sync"] == "Drifted" and world.cluster.remediations == {}
    assert [e[1] for e in world.cluster.events] == ["DriftDetected"]
    assert "drift mode Warn" in world.cluster.events[0][2]


async def test_off_is_never_observed(world: World) -> None:
    world.add("web", drift={"mode": "Off"})
    await world.cycle(NOW)
    assert world.plane.observe_calls == []
    status = world.status("web")
    assert status["sync"] == "Unknown"
    assert next(c for c in status["conditions"] if c["type"] == "Synced")["reason"] == "DriftCheckOff"


async def test_a_rollout_in_flight_holds_remediation(world: World) -> None:
    world.add("web")
    world.cluster.tasks.append(
        {"metadata": {"name": "web-1-5-0"}, "spec": {"app": "web"}, "status": {"phase": "Deploying"}}
    )
    world.cluster.tasks.append({"metadata": {"name": "old"}, "spec": {"app": "web"}, "status": {"phase": "Succeeded"}})
    world.workload("web").version = "1.5.0"
    await world.cycle(NOW)
    assert world.cluster.remediations == {}
    assert "DeploymentTask web-1-5-0 is changing web" in world.cluster.events[0][2]


async def test_an_escalated_remediation_waits_for_a_person_until_it_is_deleted(world: World) -> None:
    world.add("web")
    world.workload("web").version = "1.4.0"
    await world.cycle(NOW)
    [(key, _)] = world.cluster.remediations.items()
    record = world.ledger.records_[key]
    world.ledger.records_[key] = RecordInfo(**{**record.__dict__, "phase": "Escalated", "closed_at": NOW})
    await world.cycle(NOW + timedelta(seconds=60), relist=True)
    assert len(world.cluster.remediations) == 1
    message = next(c for c in world.status("web")["conditions"] if c["type"] == "Synced")["message"]
    assert "is Escalated and awaits a person" in message
    del world.cluster.remediations[key]  # a person deletes it to ask again
    await world.cycle(NOW + timedelta(seconds=120), relist=True)
    assert len(world.cluster.remediations) == 1 and key not in world.cluster.remediations


async def test_a_persons_open_remediation_counts_as_the_one_open(world: World) -> None:
    body = world.add("web")
    await world.ledger.save_record(
        RecordInfo("default", "by-hand", "c", NOW, "Remediating", "u1", body["metadata"]["uid"])
    )
    world.workload("web").version = "1.4.0"
    await world.cycle(NOW)
    assert world.cluster.remediations == {} and world.status("web")["remediation"] == "by-hand"


async def test_resolved_drift_clears_the_remediation_and_a_synced_interval_resets_the_counter(world: World) -> None:
    body = world.add("web")
    world.workload("web").available = False
    await world.cycle(NOW)
    key = next(iter(world.cluster.remediations))
    record = world.ledger.records_[key]
    world.ledger.records_[key] = RecordInfo(**{**record.__dict__, "phase": "Succeeded", "closed_at": NOW})
    world.workload("web").available = True
    await world.cycle(NOW + timedelta(seconds=60), relist=True)
    status = world.status("web")
    assert status["sync"] == "Synced" and "remediation" not in status and status["syncedSince"]
    assert world.cluster.events[-1][1] == "DriftResolved"
    assert world.ledger.resets == {}
    await world.cycle(NOW + timedelta(seconds=120))
    assert world.ledger.resets == {body["metadata"]["uid"]: NOW + timedelta(seconds=120)}


async def test_an_unavailable_workload_is_checked_again_when_its_grace_ends(world: World) -> None:
    world.add("web")
    w = world.workload("web")
    w.available, w.unavailable_since = False, NOW - timedelta(seconds=10)  # dev grace: 60 s
    await world.cycle(NOW)
    assert world.status("web")["sync"] == "Synced"
    [entry] = world.sweeper.entries.values()
    assert entry.next_check_at == NOW + timedelta(seconds=50)
    await world.cycle(NOW + timedelta(seconds=50))
    assert world.status("web")["drift"]["type"] == "ServiceDown"


async def test_a_failing_plane_or_api_is_retried_next_tick(world: World) -> None:
    world.add("web")
    world.plane.fail_observe = PlaneError("API down", transient=True)
    report = await world.cycle(NOW)
    assert report.errors == 1 and report.written == 0
    [entry] = world.sweeper.entries.values()
    assert entry.next_check_at == NOW + timedelta(seconds=0.01)
    world.plane.fail_observe = None

    async def broken(*_: Any) -> Any:
        raise Unavailable("API down")

    world.cluster.patch_assignment_status = broken  # type: ignore[method-assign]
    report = await world.cycle(NOW + timedelta(seconds=10))
    assert report.errors == 1


async def test_deleted_assignments_are_forgotten(world: World) -> None:
    world.add("web")
    await world.sweeper.relist(NOW)
    del world.cluster.assignments[("default", "web")]
    report = await world.sweeper.cycle(NOW)
    assert report.written == 0 and world.sweeper.entries == {}


async def test_notices_add_new_assignments_and_make_changed_ones_due(world: World) -> None:
    body = world.add("web")
    world.sweeper.notice(body)
    world.sweeper.notice({"metadata": {"name": "broken"}, "spec": {"app": "Not Valid"}})
    world.sweeper.notice({"metadata": {"name": "x", "uid": "x"}, "spec": {**spec(), "target": {"plane": "kubernetes"}}})
    assert len(world.sweeper.entries) == 1
    await world.sweeper.cycle(NOW)
    [entry] = world.sweeper.entries.values()
    assert entry.next_check_at == NOW + timedelta(seconds=60)
    world.sweeper.notice(body)  # same generation: nothing changes
    assert entry.next_check_at is not None
    changed = {**body, "metadata": {**body["metadata"], "generation": 2}, "spec": {**body["spec"], "version": "2.0"}}
    world.sweeper.notice(changed)
    assert entry.next_check_at is None and entry.resource.spec.version == "2.0"
    entry.next_check_at = NOW
    world.sweeper.expedite(entry.uid)
    world.sweeper.expedite("unknown")
    assert entry.next_check_at is None


async def test_relist_keeps_schedules_and_skips_invalid_objects(world: World) -> None:
    world.add("web")
    world.cluster.add_assignment("bad", {**spec(), "target": {"plane": "kubernetes"}})
    world.cluster.assignments[("default", "worse")] = {"metadata": {"name": "worse"}, "spec": {"app": 3}}
    await world.cycle(NOW)
    await world.sweeper.relist(NOW + timedelta(seconds=1))
    [entry] = world.sweeper.entries.values()
    assert entry.next_check_at == NOW + timedelta(seconds=60)


async def test_the_timer_relists_checks_and_stops(world: World) -> None:
    world.add("web")
    stop = asyncio.Event()
    clock = iter([NOW, NOW + timedelta(seconds=1)])

    def now() -> datetime:
        try:
            return next(clock)
        except StopIteration:
            stop.set()
            return NOW + timedelta(seconds=2)

    await asyncio.wait_for(world.sweeper.run(stop, now), 30)
    assert world.status("web")["sync"] == "Synced"
    assert tick_seconds(load_policy(None)) == 6.0 and relist_seconds(load_policy(None)) == 60.0


async def test_the_timer_survives_a_failing_cycle(world: World, caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def failing(*_: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Unavailable("API down")
        raise RuntimeError("bug")

    world.cluster.list_assignments = failing  # type: ignore[method-assign]
    stop = asyncio.Event()
    moments = iter([NOW, NOW + timedelta(minutes=5)])

    def now() -> datetime:
        value = next(moments, None)
        if value is None:
            stop.set()
            return NOW + timedelta(minutes=10)
        return value

    await asyncio.wait_for(world.sweeper.run(stop, now), 60)
    assert calls >= 2
    assert "Drift cycle skipped: API down" in caplog.text and "Drift cycle failed" in caplog.text


async def test_assignments_that_disagree_about_one_target_are_not_remediated(world: World) -> None:
    world.add("web")
    world.cluster.add_assignment("web-newer", {**spec(app="web"), "version": "1.5.0"})
    world.cluster.add_assignment("web-same", spec(app="web"), namespace="other")
    world.workload("web").version = "1.4.9"
    await world.cycle(NOW)
    assert world.cluster.remediations == {}
    message = next(c for c in world.status("web")["conditions"] if c["type"] == "Synced")["message"]
    assert "Assignment default/web-newer wants another state of the same target" in message
    assert set(world.sweeper.conflicts().values()) == {"default/web-newer", "default/web"}


async def test_a_drift_is_audited_before_the_status_and_the_events_name_the_correlation_id(world: World) -> None:
    world.add("web")
    await world.cycle(NOW)
    order: list[str] = []
    patch, post = world.cluster.patch_assignment_status, world.cluster.post_event

    async def audit(event: AuditEvent) -> None:
        order.append(f"audit {event.action}")

    async def patched(*args: Any) -> Any:
        order.append("status")
        return await patch(*args)

    async def posted(*args: Any) -> None:
        order.append(f"event {args[1]}")
        await post(*args)

    world.sweeper.audit = audit
    world.cluster.patch_assignment_status = patched  # type: ignore[method-assign]
    world.cluster.post_event = posted  # type: ignore[method-assign]
    world.workload("web").version = "1.4.0"
    await world.cycle(NOW + timedelta(seconds=60))
    assert order == [
        "audit DriftDetected",
        "audit RemediationOpened",
        "status",
        "event DriftDetected",
        "event RemediationOpened",
    ]
    assert all(message.endswith("[correlation cid-web]") for _, _, message, _ in world.cluster.events)
