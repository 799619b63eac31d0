"""CAB rules (domain.md §4): separation of duties, role, quorum, rejects, expiry, plan binding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from controller.api.changerequest import (
    ApprovalConditions,
    ChangePhase,
    ChangeRequestSpec,
    ChangeRequestStatus,
    Decision,
    DecisionRecord,
)
from controller.api.deploymenttask import ChangeWindow
from controller.api.policy import Policy, load_policy
from controller.orchestration.cab import evaluate, merge_conditions

_raw = load_policy().model_dump(mode="json", by_alias=True)
_raw["roles"]["users"].update({"cab-2": "cab-approver", "cab-3": "cab-approver"})
POLICY = Policy.model_validate(_raw)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PLAN = "a" * 64
OTHER = "b" * 64


def spec(*decisions: DecisionRecord, required: int = 1, digest: str = PLAN, **extra: Any) -> ChangeRequestSpec:
    return ChangeRequestSpec(
        task="t",
        app="shop",
        version="2.0.0",
        max_ring=2,
        risk_score=65,
        plan_digest=digest,
        required_approvals=required,
        submitted_by="dev-publisher",
        review_deadline=extra.pop("deadline", NOW + timedelta(hours=1)),
        decisions=list(decisions),
        **extra,
    )


def approve(who: str, **conditions: Any) -> DecisionRecord:
    return DecisionRecord(
        approver=who,
        decision=Decision.APPROVE,
        conditions=ApprovalConditions(**conditions) if conditions else None,
    )


def reject(who: str) -> DecisionRecord:
    return DecisionRecord(approver=who, decision=Decision.REJECT)


def test_a_cab_approver_approves_a_quorum_of_one_and_conditions_become_effective() -> None:
    verdict = evaluate(spec(approve("dev-approver", max_ring=1)), ChangeRequestStatus(), POLICY, NOW)
    assert verdict.status.phase is ChangePhase.APPROVED
    assert verdict.transition is ChangePhase.APPROVED
    assert verdict.status.approvals == 1
    assert verdict.status.effective_conditions == ApprovalConditions(max_ring=1)
    assert verdict.status.decided_at == NOW
    assert verdict.status.plan_digest == PLAN
    assert [o.accepted for o in verdict.new_outcomes] == [True]


def test_self_approval_is_denied_with_the_reason_and_does_not_count() -> None:
    verdict = evaluate(spec(approve("dev-publisher")), ChangeRequestStatus(), POLICY, NOW)
    assert verdict.status.phase is ChangePhase.PENDING
    outcome = verdict.status.outcomes[0]
    assert outcome.accepted is False
    assert outcome.reason == "Denied: dev-publisher submitted this change and may not decide on it"


def test_an_approver_without_the_cab_role_is_denied_naming_their_role() -> None:
    verdict = evaluate(spec(approve("dev-operator"), approve("stranger")), ChangeRequestStatus(), POLICY, NOW)
    reasons = [o.reason for o in verdict.status.outcomes]
    assert reasons == [
        "Denied: dev-operator holds role operator, not cab-approver",
        "Denied: stranger holds role viewer, not cab-approver",
    ]
    assert verdict.status.phase is ChangePhase.PENDING


def test_a_quorum_of_three_needs_three_different_approvers() -> None:
    s = spec(approve("dev-approver"), approve("dev-approver"), approve("cab-2"), required=3)
    first = evaluate(s, ChangeRequestStatus(), POLICY, NOW)
    assert first.status.phase is ChangePhase.PENDING
    assert first.status.approvals == 2
    assert first.status.outcomes[1].reason == "Denied: dev-approver has already decided"
    s.decisions.append(approve("cab-3"))
    second = evaluate(s, first.status, POLICY, NOW + timedelta(minutes=1))
    assert second.status.phase is ChangePhase.APPROVED
    assert [o.seen_at for o in second.status.outcomes][:3] == [NOW] * 3  # earlier verdicts kept
    assert len(second.new_outcomes) == 1


def test_any_accepted_reject_rejects_and_later_decisions_are_refused() -> None:
    s = spec(approve("dev-approver"), reject("cab-2"), approve("cab-3"), required=2)
    verdict = evaluate(s, ChangeRequestStatus(), POLICY, NOW)
    assert verdict.status.phase is ChangePhase.REJECTED
    assert verdict.status.outcomes[2].reason == "Refused: the ChangeRequest is already Rejected"
    assert verdict.status.effective_conditions is None


def test_decisions_on_a_decided_request_are_refused() -> None:
    s = spec(approve("dev-approver"))
    decided = evaluate(s, ChangeRequestStatus(), POLICY, NOW).status
    s.decisions.append(reject("cab-2"))
    verdict = evaluate(s, decided, POLICY, NOW + timedelta(minutes=5))
    assert verdict.status.phase is ChangePhase.APPROVED
    assert verdict.transition is None
    assert verdict.new_outcomes[0].reason == "Refused: the ChangeRequest is already Approved"


def test_without_quorum_by_the_deadline_it_expires_and_refuses_late_decisions() -> None:
    s = spec()
    pending = evaluate(s, ChangeRequestStatus(), POLICY, NOW)
    assert pending.status.phase is ChangePhase.PENDING
    expired = evaluate(s, pending.status, POLICY, NOW + timedelta(hours=2))
    assert expired.transition is ChangePhase.EXPIRED
    assert expired.status.decided_at == s.review_deadline
    s.decisions.append(approve("dev-approver"))
    late = evaluate(s, expired.status, POLICY, NOW + timedelta(hours=3))
    assert late.status.phase is ChangePhase.EXPIRED
    assert late.new_outcomes[0].reason == "Refused: the ChangeRequest is already Expired"


def test_a_decision_arriving_after_the_deadline_is_refused_even_before_the_phase_flips() -> None:
    s = spec(approve("dev-approver"))
    verdict = evaluate(s, ChangeRequestStatus(), POLICY, NOW + timedelta(hours=2))
    assert verdict.status.phase is ChangePhase.EXPIRED
    assert verdict.status.outcomes[0].reason.startswith("Refused: the review deadline")


def test_a_change_of_plan_voids_the_approval_and_the_approver_can_approve_again() -> None:
    s = spec(approve("dev-approver"))
    approved = evaluate(s, ChangeRequestStatus(), POLICY, NOW).status
    replanned = spec(approve("dev-approver"), digest=OTHER)
    voided = evaluate(replanned, approved, POLICY, NOW + timedelta(minutes=1))
    assert voided.status.phase is ChangePhase.PENDING
    assert voided.transition is ChangePhase.PENDING
    assert voided.status.outcomes[0].accepted is False
    assert voided.status.outcomes[0].reason.startswith("Void: approved plan aaaaaaaaaaaa")
    replanned.decisions.append(approve("dev-approver"))
    again = evaluate(replanned, voided.status, POLICY, NOW + timedelta(minutes=2))
    assert again.status.phase is ChangePhase.APPROVED


def test_a_decision_naming_another_plan_is_denied() -> None:
    record = approve("dev-approver").model_copy(update={"plan_digest": OTHER})
    verdict = evaluate(spec(record), ChangeRequestStatus(), POLICY, NOW)
    assert verdict.status.outcomes[0].reason.startswith("Denied: decision is for plan bbbbbbbbbbbb")


def test_re_evaluating_changes_nothing() -> None:
    s = spec(approve("dev-publisher"), approve("dev-approver"))
    first = evaluate(s, ChangeRequestStatus(), POLICY, NOW)
    second = evaluate(s, first.status, POLICY, NOW + timedelta(minutes=10))
    assert second.status == first.status
    assert second.new_outcomes == [] and second.transition is None


def test_conditions_of_several_approvals_merge_to_the_strictest() -> None:
    window = ChangeWindow(start="22:00", end="04:00")
    records = [
        approve("a", max_ring=3, min_success_rate=0.97, min_soak_seconds=60),
        approve("b", max_ring=1, rollback_below=0.9, windows=[window]),
        approve("c", min_success_rate=0.99, rollback_below=0.95, windows=[window]),
        approve("d"),
    ]
    merged = merge_conditions(records)
    assert merged == ApprovalConditions(
        max_ring=1, min_success_rate=0.99, rollback_below=0.95, min_soak_seconds=60, windows=[window]
    )
    assert merge_conditions([approve("d")]) is None
