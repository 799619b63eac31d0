"""The remediation policy: every rule that can decide, in the order domain.md §6.3 asks for."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.api.assignment import DriftType
from controller.api.policy import Policy, Role, load_policy
from controller.api.remediation import FixAction
from controller.remediation.backoff import AttemptOutcome, AttemptRecord
from controller.remediation.classifying import Finding
from controller.remediation.deciding import Facts, RateCounts, Verdict, decide
from tests.remediation.inmemory import NOW

V = DriftType.VERSION_MISMATCH
DRIFT = Finding(V, "running 1.4.0, want 1.4.1")


def policy(**changes: Any) -> Policy:
    base = load_policy(None)
    data = base.model_dump(by_alias=True, mode="json")
    for section, values in changes.items():
        if isinstance(values, dict):
            data[section] = {**data[section], **values}
        else:
            data[section] = values
    return Policy.model_validate(data)


def facts(**changes: Any) -> Facts:
    values: dict[str, Any] = {"app": "web", "ring": 0, "finding": DRIFT, "now": NOW, "requester": "system:ringpilot"}
    values.update(changes)
    return Facts(**values)


def failed(n: int, minutes_ago: float) -> AttemptRecord:
    start = NOW - timedelta(minutes=minutes_ago)
    return AttemptRecord(n, V, start, AttemptOutcome.FAILED, start + timedelta(seconds=10))


def test_low_risk_drift_in_ring_0_is_fixed_autonomously() -> None:
    decision = decide(facts(), load_policy(None))
    assert (decision.verdict, decision.rule, decision.action) == (Verdict.ACT, "Autonomous", FixAction.UPDATE)
    assert decision.allowed


@pytest.mark.parametrize(
    ("changes", "verdict", "rule"),
    [
        ({"ring": 2}, Verdict.ESCALATE, "ProductionRing"),
        ({"ring": 4}, Verdict.ESCALATE, "ProductionRing"),
        ({"app": "vpn"}, Verdict.ESCALATE, "PrivilegedApp"),
        ({"finding": Finding(DriftType.UNKNOWN, "odd")}, Verdict.ESCALATE, "UnknownDrift"),
        ({"finding": Finding(DriftType.UNKNOWN, "repo", True)}, Verdict.ESCALATE, "SecurityRelevantDrift"),
        ({"finding": None}, Verdict.DONE, "NoDrift"),
        ({"role": Role.VIEWER, "requester": "v"}, Verdict.DENY, "RequesterLacksPermission"),
        ({"role": Role.PUBLISHER, "requester": "p"}, Verdict.DENY, "RequesterLacksPermission"),
        ({"requested_action": FixAction.RESTART}, Verdict.DENY, "ActionDoesNotFitDrift"),
        ({"expected_drift": DriftType.SERVICE_DOWN}, Verdict.DENY, "DriftMismatch"),
        ({"expected_drift": DriftType.SERVICE_DOWN, "first_pass": False}, Verdict.ESCALATE, "DriftChanged"),
        ({"attempts": [failed(1, 300), failed(2, 200), failed(3, 100)]}, Verdict.ESCALATE, "MaxAttempts"),
        ({"change_in_progress": "web-1-4-2"}, Verdict.WAIT, "ChangeInProgress"),
        ({"attempts": [failed(1, 0.5)]}, Verdict.WAIT, "Backoff"),
        ({"rates": RateCounts(in_ring=5)}, Verdict.WAIT, "RateLimited"),
        ({"rates": RateCounts(for_app=3)}, Verdict.WAIT, "RateLimited"),
        ({"rates": RateCounts(last_hour=20)}, Verdict.WAIT, "RateLimited"),
    ],
)
def test_each_rule(changes: dict[str, Any], verdict: Verdict, rule: str) -> None:
    decision = decide(facts(**changes), policy(risk={"privilegedApps": ["vpn"]}))
    assert (decision.verdict, decision.rule) == (verdict, rule), decision.reason


def test_operators_and_admins_may_ask_for_a_fix() -> None:
    for role in (Role.OPERATOR, Role.ADMIN):
        assert decide(facts(role=role, requester="someone"), load_policy(None)).verdict is Verdict.ACT


def test_the_backoff_elapses_and_names_the_next_attempt() -> None:
    elapsed = decide(facts(attempts=[failed(1, 10)]), load_policy(None))  # dev policy: 60 s, then 120 s
    assert elapsed.verdict is Verdict.ACT
    hourly = policy(remediation={"initialBackoffSeconds": 3600, "maxBackoffSeconds": 14400})
    held = decide(facts(attempts=[failed(1, 10)]), hourly)
    assert held.verdict is Verdict.WAIT
    assert held.next_at == NOW - timedelta(minutes=10) + timedelta(seconds=10) + timedelta(hours=1)
    assert "attempt 2 waits until" in held.reason


def test_flapping_stalls_before_attempts_run_out() -> None:
    verified = [
        AttemptRecord(1, V, NOW - timedelta(minutes=5), AttemptOutcome.VERIFIED, NOW - timedelta(minutes=4)),
        AttemptRecord(2, V, NOW - timedelta(minutes=3), AttemptOutcome.VERIFIED, NOW - timedelta(minutes=2)),
    ]
    decision = decide(facts(history=verified, attempts=verified, interval_seconds=900), load_policy(None))
    assert (decision.verdict, decision.rule) == (Verdict.STALL, "Flapping")
    assert "came back 2 times" in decision.reason


def test_a_deny_window_holds_the_fix_until_it_ends() -> None:
    freeze = {"name": "freeze", "kind": "deny", "rings": [0], "start": "11:00", "end": "13:00"}
    decision = decide(facts(), policy(windows=[freeze]))
    assert (decision.verdict, decision.rule, decision.window) == (Verdict.WAIT, "DenyWindow", "freeze")
    assert decision.next_at == NOW + timedelta(hours=1)
    outside = {"name": "nights", "rings": [0], "start": "22:00", "end": "04:00"}
    decision = decide(facts(), policy(windows=[outside]))
    assert (decision.verdict, decision.rule, decision.window) == (Verdict.WAIT, "OutsideAllowWindow", "nights")


def test_a_dry_run_reports_what_would_happen_and_a_denial_stays_a_denial() -> None:
    plan = decide(facts(dry_run=True), load_policy(None))
    assert plan.verdict is Verdict.PLAN and plan.reason.startswith("Dry run: would Update (Autonomous)")
    escalate = decide(facts(dry_run=True, ring=3), load_policy(None))
    assert escalate.verdict is Verdict.PLAN and "would escalate to a person (ProductionRing)" in escalate.reason
    for changes, words in (
        ({"attempts": [failed(1, 0)]}, "would wait"),
        ({"finding": None}, "would do nothing"),
        ({"history": [], "attempts": []}, "would Update"),
    ):
        assert (
            words in decide(facts(dry_run=True, **changes), policy(remediation={"initialBackoffSeconds": 600})).reason
        )
    stall_history = [AttemptRecord(n, V, NOW - timedelta(minutes=2), AttemptOutcome.VERIFIED, NOW) for n in (1, 2)]
    assert "would stop (Stalled)" in decide(facts(dry_run=True, history=stall_history), load_policy(None)).reason
    denied = decide(facts(dry_run=True, role=Role.VIEWER, requester="v"), load_policy(None))
    assert denied.verdict is Verdict.DENY


def test_autonomous_remediation_can_be_turned_off_entirely() -> None:
    decision = decide(facts(), policy(remediation={"autonomousMaxRing": -1}))
    assert decision.rule == "ProductionRing"
