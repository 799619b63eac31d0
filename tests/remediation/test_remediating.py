"""The Remediation engine tick by tick in the in-memory world: decide, act, verify, back off, escalate, deny."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta

import pytest

from controller.api.assignment import DriftType
from controller.api.kinds import REMEDIATION
from controller.api.policy import ChangeWindow
from controller.core.errors import Unavailable
from controller.planes.base import PlaneError
from controller.reconcile.remediations import reconcile_remediation, reconcile_with
from controller.remediation.backoff import AttemptOutcome
from controller.remediation.deciding import RateCounts
from controller.remediation.ledger import NewAttempt, RecordInfo
from tests.remediation.inmemory import NOW, Workload
from tests.remediation.remediation_driver import Harness, short_policy

S = timedelta(seconds=1)


def ready(h: Harness, name: str) -> dict[str, str]:
    return next(c for c in h.status(name)["conditions"] if c["type"] == "Ready")


async def fix(h: Harness, name: str, start: timedelta = timedelta(0)) -> None:
    """Reconcile through act, work and verification; settle is 30 s."""
    await h.reconcile(name, NOW + start)
    await h.work(NOW + start)
    await h.reconcile(name, NOW + start + S)
    await h.reconcile(name, NOW + start + 2 * S)
    await h.reconcile(name, NOW + start + 33 * S)


async def test_a_loop_remediation_is_decided_acted_on_verified_and_succeeds() -> None:
    h = Harness()
    asg = h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation(
        "fix", by_loop=True, driftType="VersionMismatch", action="Update", requestedBy="system:ringpilot"
    )
    first = await h.reconcile("fix", NOW)
    status = h.status("fix")
    assert (status["phase"], status["attempts"], status["action"]) == ("Remediating", 1, "Update")
    assert status["policy"] == {"allowed": True, "reason": status["policy"]["reason"], "rule": "Autonomous"}
    assert status["currentAttempt"]["number"] == 1 and first.requeue_after_seconds == 5.0
    assert [r.attempt for r in h.enqueued] == [1] and h.enqueued[0].assignment == "web"
    assert first.labels  # the correlation label is threaded
    waiting = await h.reconcile("fix", NOW + S)  # the worker has not run yet
    assert waiting.status == {} and waiting.requeue_after_seconds == 5.0
    await h.work(NOW + S)
    assert h.plane.actions[0][:2] == ("apply", "ring-0-lab/web") and h.workload().version == "1.4.1"
    await h.reconcile("fix", NOW + 2 * S)
    assert h.status("fix")["phase"] == "Verifying"
    await h.reconcile("fix", NOW + 3 * S)
    assert h.status("fix")["currentAttempt"]["healthySince"] == "2026-11-25T12:00:03Z"
    await h.reconcile("fix", NOW + 20 * S)
    assert h.status("fix")["phase"] == "Verifying"
    await h.reconcile("fix", NOW + 33 * S)
    status = h.status("fix")
    assert status["phase"] == "Succeeded" and status["requiresHumanReview"] is False
    assert (
        status["verification"]["verified"] is True
        and "healthy for 30s after Update" in status["verification"]["detail"]
    )
    assert ready(h, "fix")["reason"] == "Verified"
    assert h.expedited == [asg["metadata"]["uid"]]
    assert [a.outcome for _, a in h.ledger.attempts] == [AttemptOutcome.VERIFIED]
    record = h.ledger.records_[("default", "fix")]
    assert (record.phase, record.closed_at) == ("Succeeded", NOW + 33 * S)
    assert h.audits() == ["RemediationStarted", "FixApplied", "Verified"]
    assert h.events() == ["Accepted", "Remediating", "FixApplied", "RemediationSucceeded"]
    done = await h.reconcile("fix", NOW + 99 * S)
    assert done.status == {} and done.requeue_after_seconds is None


@pytest.mark.parametrize(
    ("kind", "inject", "operation"),
    [
        ("MissingInstall", lambda w: setattr(w, "present", False), "install"),
        ("ConfigurationDrift", lambda w: setattr(w, "config_sha256", "b" * 64), "reapply_config"),
        ("ServiceDown", lambda w: setattr(w, "available", False), "restart"),
    ],
)
async def test_each_drift_type_gets_its_fix(kind: str, inject: object, operation: str) -> None:
    h = Harness()
    h.assignment()
    inject(h.workload())  # type: ignore[operator]
    await h.remediation("fix", requestedBy="dev-operator")
    await fix(h, "fix")
    status = h.status("fix")
    assert (status["phase"], status["driftType"], status["requesterRole"]) == ("Succeeded", kind, "operator")
    assert [a[0] for a in h.plane.actions] == [operation]


async def test_a_fix_that_does_not_hold_backs_off_and_escalates_after_three_attempts() -> None:
    h = Harness()
    h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("fix", requestedBy="dev-operator")
    start = NOW
    for attempt in (1, 2, 3):
        await h.reconcile("fix", start)
        assert h.status("fix")["attempts"] == attempt
        await h.work(start)
        h.workload().version = "9.9.9"  # someone sets it back before it settles
        await h.reconcile("fix", start + S)  # Verifying
        await h.reconcile("fix", start + 200 * S)  # past verifyTimeoutSeconds (120)
        if attempt < 3:
            status = h.status("fix")
            assert status["phase"] == "Pending" and status["policy"]["rule"] == "Backoff"
            backoff = 60 * 2 ** (attempt - 1)
            assert status["nextAttemptAt"] == (start + (200 + backoff) * S).strftime("%Y-%m-%dT%H:%M:%SZ")
            held = await h.reconcile("fix", start + 201 * S)
            assert h.status("fix")["policy"]["rule"] == "Backoff" and held.events == ()
            start = start + (200 + backoff) * S
    status = h.status("fix")
    assert status["phase"] == "Escalated" and status["policy"]["rule"] == "MaxAttempts"
    assert status["requiresHumanReview"] is True and status["attempts"] == 3
    assert status["verification"]["verified"] is False
    assert h.events().count("AttemptFailed") == 2 and h.events()[-1] == "Escalated"


async def test_drift_that_returns_while_settling_fails_the_attempt_at_once() -> None:
    h = Harness()
    h.assignment()
    h.workload().available = False
    await h.remediation("fix", requestedBy="dev-admin")
    await h.reconcile("fix", NOW)
    await h.work(NOW)
    await h.reconcile("fix", NOW + S)
    await h.reconcile("fix", NOW + 2 * S)
    assert h.status("fix")["currentAttempt"]["healthySince"]
    h.workload().available = False
    await h.reconcile("fix", NOW + 3 * S)
    status = h.status("fix")
    assert status["phase"] == "Pending" and "came back while settling" in status["verification"]["detail"]


async def test_a_refused_fix_fails_and_asks_for_a_person() -> None:
    h = Harness()
    h.assignment()
    h.workload().present = False
    h.plane.fail_action = PlaneError("No recorded manifest", transient=False)
    await h.remediation("fix", requestedBy="dev-operator")
    await h.reconcile("fix", NOW)
    await h.work(NOW)
    await h.reconcile("fix", NOW + S)
    status = h.status("fix")
    assert status["phase"] == "Failed" and status["requiresHumanReview"] is True
    assert "No recorded manifest" in status["currentAttempt"]["result"]
    assert ready(h, "fix")["reason"] == "FixFailed"


async def test_a_fix_the_worker_never_finishes_times_out_as_a_failed_attempt() -> None:
    h = Harness()
    h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("fix", requestedBy="dev-operator")
    await h.reconcile("fix", NOW)
    h.claims.claim(f"remediation/{h.body('fix')['metadata']['uid']}/act/1", NOW)
    await h.reconcile("fix", NOW + 601 * S)
    status = h.status("fix")
    assert status["phase"] == "Pending" and "did not finish within 600s" in status["verification"]["detail"]


async def test_a_fix_no_worker_took_up_is_sent_again_once_per_lease_and_acted_on_once() -> None:
    h = Harness()  # settle 30 s: polls every 5 s, the lease is 20 polls
    h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("fix", requestedBy="dev-operator")
    await h.reconcile("fix", NOW)
    h.enqueued.clear()  # the message is lost (a worker held it when it was killed)
    quiet = await h.reconcile("fix", NOW + 99 * S)
    assert h.enqueued == [] and quiet.status == {}
    await h.reconcile("fix", NOW + 100 * S)
    assert [r.attempt for r in h.enqueued] == [1] and h.enqueued[0].assignment == "web"
    status = h.status("fix")
    assert status["phase"] == "Remediating" and status["currentAttempt"]["resentAt"] == "2026-11-25T12:01:40Z"
    assert h.outcomes[-1].events[0].type == "Warning" and "within 100s; sent it again" in h.events_text()[-1]
    await h.reconcile("fix", NOW + 101 * S)
    await h.reconcile("fix", NOW + 199 * S)
    assert len(h.enqueued) == 1, "sent again only once per lease"
    await h.reconcile("fix", NOW + 200 * S)
    assert [r.attempt for r in h.enqueued] == [1, 1]
    await h.work(NOW + 201 * S)  # the worker gets both copies; the claim lets one act
    assert len(h.plane.actions) == 1 and h.workload().version == "1.4.1"
    await h.reconcile("fix", NOW + 202 * S)
    assert h.status("fix")["phase"] == "Verifying"
    assert h.audits() == ["RemediationStarted", "FixResent", "FixResent", "FixApplied"]


async def test_a_claimed_fix_is_sent_again_only_once_its_claim_is_a_lease_old() -> None:
    h = Harness()  # the lease is 100 s, counted from the claim once a worker took the fix up
    h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("fix", requestedBy="dev-operator")
    await h.reconcile("fix", NOW)
    h.enqueued.clear()
    h.claims.claim(f"remediation/{h.body('fix')['metadata']['uid']}/act/1", NOW + 50 * S)
    await h.reconcile("fix", NOW + 149 * S)
    assert h.enqueued == [] and "FixResent" not in h.audits()
    await h.reconcile("fix", NOW + 150 * S)  # its worker may have died holding it
    assert [r.attempt for r in h.enqueued] == [1]
    assert "has had no outcome 100s after a worker took it up; sent it again" in h.events_text()[-1]


async def test_drift_in_a_production_ring_escalates_and_nothing_is_touched() -> None:
    h = Harness()
    h.assignment(ring=3)
    h.workload(namespace="ring-3-department").version = "1.4.0"
    await h.remediation("fix", by_loop=True, driftType="VersionMismatch", requestedBy="system:ringpilot")
    await h.reconcile("fix", NOW)
    status = h.status("fix")
    assert (status["phase"], status["policy"]["rule"], status["requiresHumanReview"]) == (
        "Escalated",
        "ProductionRing",
        True,
    )
    assert h.enqueued == [] and h.plane.actions == [] and h.ledger.attempts == []
    assert h.audits() == ["Escalated"] and h.outcomes[0].audits[0].detail["rule"] == "ProductionRing"


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        ({"requestedBy": "dev-viewer"}, "RequesterLacksPermission"),
        ({"requestedBy": "dev-approver"}, "RequesterLacksPermission"),
        ({"requestedBy": "dev-operator", "assignment": "nope"}, "UnknownAssignment"),
        ({"requestedBy": "dev-operator", "driftType": "VersionMismatch", "action": "Restart"}, "InvalidSpec"),
        ({"requestedBy": "dev-operator", "driftType": "ServiceDown"}, "DriftMismatch"),
        ({"requestedBy": "dev-operator", "action": "Restart"}, "ActionDoesNotFitDrift"),
        ({}, "ReservedRequester"),
    ],
)
async def test_bad_requests_are_denied_and_touch_nothing(spec: dict[str, str], rule: str) -> None:
    h = Harness()
    h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("fix", **spec)
    await h.reconcile("fix", NOW)
    status = h.status("fix")
    assert (status["phase"], status["policy"]["rule"]) == ("Denied", rule), status
    assert status["policy"]["allowed"] is False
    assert h.enqueued == [] and h.plane.actions == []
    if rule == "RequesterLacksPermission":
        assert h.plane.observe_calls == []


async def test_an_invalid_assignment_and_a_forged_loop_record_are_denied() -> None:
    h = Harness()
    h.cluster.add_assignment("web", {**h.assignment()["spec"], "target": {"plane": "kubernetes"}})
    await h.remediation("fix", requestedBy="dev-operator")
    await h.reconcile("fix", NOW)
    assert h.status("fix")["policy"]["rule"] == "InvalidAssignment"
    h.cluster.assignments[("default", "web")]["spec"]["version"] = "not a tag!"
    await h.remediation("fix2", requestedBy="dev-operator")
    await h.reconcile("fix2", NOW)
    assert h.status("fix2")["policy"]["rule"] == "InvalidAssignment"
    g = Harness()
    g.assignment()
    body = await g.remediation("copied", by_loop=True)
    g.ledger.records_[("default", "copied")] = RecordInfo(
        "default", "copied", "c", NOW, uid="someone-else", opened_by_loop=True
    )
    assert body["spec"].get("requestedBy") is None
    await g.reconcile("copied", NOW)
    assert g.status("copied")["policy"]["rule"] == "ReservedRequester"


async def test_a_dry_run_plans_and_does_nothing() -> None:
    h = Harness()
    h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("plan", requestedBy="dev-operator", dryRun=True)
    await h.reconcile("plan", NOW)
    status = h.status("plan")
    assert status["phase"] == "Planned" and status["planned"].startswith("Dry run: would Update (Autonomous)")
    assert ready(h, "plan")["reason"] == "DryRun"
    assert h.enqueued == [] and h.ledger.attempts == []


async def test_no_drift_means_nothing_to_do() -> None:
    h = Harness()
    h.assignment()
    await h.remediation("fix", requestedBy="dev-operator")
    await h.reconcile("fix", NOW)
    status = h.status("fix")
    assert (status["phase"], status["policy"]["rule"]) == ("Succeeded", "NoDrift")
    assert status["verification"]["detail"] == "No drift observed; nothing was changed"


async def test_one_open_remediation_per_assignment() -> None:
    h = Harness()
    asg = h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("first", requestedBy="dev-operator")
    await h.reconcile("first", NOW)
    await h.remediation("second", requestedBy="dev-operator")
    await h.reconcile("second", NOW + S)
    assert (h.status("second")["phase"], h.status("second")["policy"]["rule"]) == ("Denied", "AlreadyOpen")
    del h.cluster.remediations[("default", "first")]  # gone without closing: no longer blocks
    await h.remediation("third", requestedBy="dev-operator")
    await h.reconcile("third", NOW + 2 * S)
    assert h.status("third")["phase"] != "Denied"
    assert h.ledger.records_[("default", "first")].phase == "Deleted"
    assert asg["metadata"]["uid"] == h.ledger.records_[("default", "third")].assignment_uid


async def test_waiting_for_a_window_or_a_limit_keeps_looking_and_speaks_once() -> None:
    freeze = {"name": "freeze", "kind": "deny", "start": "11:00", "end": "13:00"}
    h = Harness(policy=short_policy().model_copy(update={"windows": [ChangeWindow.model_validate(freeze)]}))
    h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("fix", requestedBy="dev-operator")
    first = await h.reconcile("fix", NOW)
    status = h.status("fix")
    assert (status["phase"], status["policy"]["rule"]) == ("Pending", "DenyWindow")
    assert status["policy"]["window"] == "freeze"
    assert status["nextAttemptAt"] == "2026-11-25T13:00:00Z" and first.requeue_after_seconds == 300.0
    assert "freeze" in ready(h, "fix")["message"]
    again = await h.reconcile("fix", NOW + S)
    assert again.events == () and again.audits == ()
    await h.reconcile("fix", NOW + timedelta(hours=1))
    assert h.status("fix")["phase"] == "Remediating"


async def test_rate_limits_are_checked_when_the_attempt_starts() -> None:
    h = Harness(policy=short_policy(max_concurrent_per_ring=1))
    h.assignment()
    h.workload().version = "1.4.0"
    await h.ledger.start_attempt(
        NewAttempt("other", DriftType.SERVICE_DOWN, 1, "r0", "r0", "api", 0, "Restart"), h.policy.remediation, NOW, 3600
    )
    await h.remediation("fix", requestedBy="dev-operator")
    await h.reconcile("fix", NOW + S)
    assert h.status("fix")["policy"]["rule"] == "RateLimited"

    async def under_limit(*_: object) -> RateCounts:
        return RateCounts()

    h.ledger.rate_counts = under_limit  # type: ignore[method-assign,assignment]
    await h.reconcile("fix", NOW + 2 * S)  # the policy saw room, the atomic start did not
    assert h.status("fix")["policy"]["reason"] == "concurrency or hourly limit reached"


@pytest.mark.parametrize(
    ("inject", "action", "operation"),
    [
        (lambda w: setattr(w, "version", "1.4.0"), "Update", "apply"),
        (lambda w: setattr(w, "available", False), "Restart", "restart"),
    ],
    ids=["VersionMismatch", "ServiceDown"],
)
async def test_a_pending_attempt_is_adopted_after_a_lost_status_write(
    inject: Callable[[Workload], None], action: str, operation: str
) -> None:
    h = Harness()
    h.assignment()
    inject(h.workload())
    await h.remediation("fix", requestedBy="dev-operator")
    await h.reconcile("fix", NOW)
    h.set_status("fix", {})  # as if the status write after the start was lost
    h.enqueued.clear()
    await h.reconcile("fix", NOW + S)
    status = h.status("fix")
    assert status["phase"] == "Remediating" and [r.attempt for r in h.enqueued] == [1]
    assert status["action"] == action  # the attempt's own fix, as the ledger recorded it
    assert len(h.ledger.attempts) == 1
    await h.work(NOW + S)
    assert [a[0] for a in h.plane.actions] == [operation]


async def test_without_a_broker_or_a_plane_the_reconcile_retries_later() -> None:
    h = Harness(broker=False)
    h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("fix", requestedBy="dev-operator")
    with pytest.raises(Unavailable):
        await h.reconcile("fix", NOW)
    g = Harness()
    g.assignment()
    g.plane.fail_observe = PlaneError("API down", transient=True)
    await g.remediation("fix", requestedBy="dev-operator")
    with pytest.raises(Unavailable):
        await g.reconcile("fix", NOW)
    g.plane.fail_observe = PlaneError("forbidden", transient=False)
    await g.reconcile("fix", NOW)
    assert g.status("fix")["policy"]["rule"] == "UnknownDrift"


async def test_a_drift_that_changes_type_after_a_failed_attempt_escalates() -> None:
    h = Harness()
    h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("fix", requestedBy="dev-operator")
    await h.reconcile("fix", NOW)
    await h.work(NOW)
    h.workload().available = False
    await h.reconcile("fix", NOW + S)
    await h.reconcile("fix", NOW + 200 * S)
    assert h.status("fix")["policy"]["rule"] == "Backoff"
    await h.reconcile("fix", NOW + 300 * S)
    status = h.status("fix")
    assert (status["phase"], status["policy"]["rule"]) == ("Escalated", "DriftChanged")


async def test_phases_without_an_attempt_fall_back_to_pending() -> None:
    h = Harness()
    h.assignment()
    await h.remediation("fix", requestedBy="dev-operator")
    for phase in ("Remediating", "Verifying"):
        h.set_status("fix", {"phase": phase})
        outcome = await h.reconcile("fix", NOW)
        assert outcome.status["phase"] == "Pending"


async def test_without_the_runtime_a_remediation_is_only_admitted() -> None:
    h = Harness()
    h.assignment()
    await h.remediation("fix", requestedBy="dev-operator")
    deps = h.deps
    deps.remediation = None
    outcome = await reconcile_remediation(REMEDIATION, h.body("fix"), deps, NOW)
    assert outcome.status["conditions"][0]["reason"] == "Accepted" and "phase" not in outcome.status


async def test_a_body_read_before_the_last_status_write_does_not_take_the_transition_again() -> None:
    """Kopf applies a status patch after the handler returns; the resync timer may run on the older body."""
    h = Harness()
    h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("fix", requestedBy="dev-operator")
    await h.reconcile("fix", NOW)
    await h.work(NOW)
    h.workload().version = "9.9.9"  # someone sets it back
    await h.reconcile("fix", NOW + S)  # Verifying
    stale = copy.deepcopy(h.body("fix"))
    failed = await reconcile_remediation(REMEDIATION, h.body("fix"), h.deps, NOW + 200 * S)
    h.apply("fix", failed)
    assert [e.reason for e in failed.events] == ["AttemptFailed"]
    again = await reconcile_remediation(REMEDIATION, stale, h.deps, NOW + 200 * S + S / 10)
    assert again.events == () and again.audits == ()
    h.apply("fix", again)
    assert h.status("fix")["phase"] == "Pending" and h.status("fix")["policy"]["rule"] == "Backoff"


async def test_a_status_older_than_the_ledger_waits_for_the_write_then_repairs_it_without_repeating_notes() -> None:
    """Kopf patches annotations, then status: a body may carry a new resourceVersion and the old status."""
    h = Harness()
    h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("fix", requestedBy="dev-operator")
    await h.reconcile("fix", NOW)
    await h.work(NOW)
    h.workload().version = "9.9.9"
    await h.reconcile("fix", NOW + S)  # Verifying
    older = copy.deepcopy(h.body("fix"))
    older["metadata"]["resourceVersion"] = "annotations-patched"
    failed = await reconcile_with(h.ports, REMEDIATION, h.body("fix"), h.deps, NOW + 200 * S)
    assert [e.reason for e in failed.events] == ["AttemptFailed"]  # its status write is still on its way
    soon = await reconcile_with(h.ports, REMEDIATION, older, h.deps, NOW + 201 * S)
    assert (soon.status, soon.events, soon.audits, soon.requeue_after_seconds) == ({}, (), (), 0.5)
    late = await reconcile_with(h.ports, REMEDIATION, older, h.deps, NOW + 211 * S)  # the write was lost
    assert late.events == () and late.audits == ()
    assert (late.status["phase"], late.status["policy"]["rule"]) == ("Pending", "Backoff")


async def test_a_fix_reported_once_is_not_reported_again_from_an_older_status() -> None:
    h = Harness()
    h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("fix", requestedBy="dev-operator")
    await h.reconcile("fix", NOW)
    await h.work(NOW)
    older = copy.deepcopy(h.body("fix"))  # Remediating, as a timer may still read it
    older["metadata"]["resourceVersion"] = "annotations-patched"
    applied = await reconcile_with(h.ports, REMEDIATION, h.body("fix"), h.deps, NOW + S)
    assert [e.reason for e in applied.events] == ["FixApplied"]
    again = await reconcile_with(h.ports, REMEDIATION, older, h.deps, NOW + 2 * S)
    assert (again.status, again.events, again.audits, again.requeue_after_seconds) == ({}, (), (), 0.5)


async def test_a_body_with_new_annotations_and_the_status_before_the_start_does_not_start_again() -> None:
    """Kopf patches annotations, then status: a timer between the two reads a new resourceVersion, old status."""
    h = Harness()
    h.assignment()
    h.workload().version = "1.4.0"
    await h.remediation("fix", requestedBy="dev-operator")
    started = await reconcile_remediation(REMEDIATION, h.body("fix"), h.deps, NOW)
    h.set_status("fix", dict(h.status("fix")))  # the annotations' write: a new resourceVersion, the old status
    between = await reconcile_remediation(REMEDIATION, h.body("fix"), h.deps, NOW + S / 10)
    h.apply("fix", started)
    h.apply("fix", between)
    assert h.audits().count("RemediationStarted") == 1 and h.events().count("Remediating") == 1
    assert (between.status, between.events, between.audits) == ({}, (), ())
    assert h.status("fix")["phase"] == "Remediating" and len(h.ledger.attempts) == 1
