"""CAB evaluation of a ChangeRequest (docs/domain.md §4): separation of duties, quorum, expiry, plan binding.

Pure. `evaluate` re-reads every decision in `spec.decisions` in order and judges each one exactly
once: a decision already judged (same position, approver and verdict in `status.outcomes`) keeps its
verdict and the time it was first seen, so re-running the reconcile changes nothing. Rules:
approver != submitter; the approver's role under the policy holds `approve` (only `cab-approver`
does); one decision per approver; any accepted reject rejects; a quorum of accepted approvals for
the *current* plan digest approves; past `reviewDeadline` the request expires; a decided or expired
request refuses further decisions; a change of plan voids approvals counted for the old digest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from controller.api.changerequest import (
    ChangePhase,
    ChangeRequestSpec,
    ChangeRequestStatus,
    Decision,
    DecisionOutcome,
    DecisionRecord,
)
from controller.api.deploymenttask import ApprovalConditions, ChangeWindow
from controller.api.policy import Permission, Policy

FINAL = frozenset({ChangePhase.APPROVED, ChangePhase.REJECTED, ChangePhase.EXPIRED, ChangePhase.REVOKED})
#: Final phases a change of plan does not reopen (an approval is voided by it; a rejection is not).
STICKY = frozenset({ChangePhase.REJECTED, ChangePhase.EXPIRED, ChangePhase.REVOKED})


@dataclass(frozen=True)
class CabVerdict:
    """The new status, the outcomes judged for the first time, and the phase change (if any)."""

    status: ChangeRequestStatus
    new_outcomes: list[DecisionOutcome] = field(default_factory=list)
    transition: ChangePhase | None = None
    voided: int = 0


def _same(outcome: DecisionOutcome, record: DecisionRecord) -> bool:
    return outcome.approver == record.approver and outcome.decision == record.decision


def judge(
    record: DecisionRecord,
    spec: ChangeRequestSpec,
    policy: Policy,
    phase: ChangePhase,
    accepted_approvers: set[str],
    now: datetime,
) -> DecisionOutcome:
    """The verdict on one decision seen for the first time at `now`, given the phase so far."""

    def verdict(accepted: bool, reason: str) -> DecisionOutcome:
        return DecisionOutcome(
            approver=record.approver,
            decision=record.decision,
            accepted=accepted,
            reason=reason,
            plan_digest=spec.plan_digest,
            seen_at=now,
        )

    if phase in FINAL:
        return verdict(False, f"Refused: the ChangeRequest is already {phase.value}")
    if spec.review_deadline is not None and now >= spec.review_deadline:
        return verdict(False, f"Refused: the review deadline {spec.review_deadline.isoformat()} has passed")
    if record.approver == spec.submitted_by:
        return verdict(False, f"Denied: {record.approver} submitted this change and may not decide on it")
    role = policy.role_for(record.approver)
    if Permission.APPROVE not in policy.permissions_for(record.approver):
        return verdict(False, f"Denied: {record.approver} holds role {role.value}, not cab-approver")
    if record.plan_digest is not None and record.plan_digest != spec.plan_digest:
        return verdict(
            False,
            f"Denied: decision is for plan {record.plan_digest[:12]}, current plan is {spec.plan_digest[:12]}",
        )
    if record.approver in accepted_approvers:
        return verdict(False, f"Denied: {record.approver} has already decided")
    return verdict(True, f"Accepted: {record.decision.value} by {record.approver} ({role.value})")


def _void(outcome: DecisionOutcome, spec: ChangeRequestSpec) -> DecisionOutcome:
    old = (outcome.plan_digest or "?")[:12]
    return outcome.model_copy(
        update={
            "accepted": False,
            "reason": f"Void: approved plan {old}, the plan is now {spec.plan_digest[:12]}",
        }
    )


def merge_conditions(records: list[DecisionRecord]) -> ApprovalConditions | None:
    """The strictest combination of the conditions attached to accepted approvals."""
    found = [r.conditions for r in records if r.conditions is not None]
    if not found:
        return None
    rings = [c.max_ring for c in found if c.max_ring is not None]
    rates = [c.min_success_rate for c in found if c.min_success_rate is not None]
    below = [c.rollback_below for c in found if c.rollback_below is not None]
    soaks = [c.min_soak_seconds for c in found if c.min_soak_seconds is not None]
    windows: list[ChangeWindow] = []
    for c in found:
        windows.extend(w for w in c.windows if w not in windows)
    return ApprovalConditions(
        max_ring=min(rings) if rings else None,
        min_success_rate=max(rates) if rates else None,
        rollback_below=max(below) if below else None,
        min_soak_seconds=max(soaks) if soaks else None,
        windows=windows[:8],
    )


def evaluate(spec: ChangeRequestSpec, previous: ChangeRequestStatus, policy: Policy, now: datetime) -> CabVerdict:
    """Judge new decisions and recompute the phase (see the module docstring for the rules)."""
    before = previous.phase or ChangePhase.PENDING
    sticky = before if before in STICKY else None
    phase = sticky or ChangePhase.PENDING
    outcomes: list[DecisionOutcome] = []
    new: list[DecisionOutcome] = []
    accepted_approvers: set[str] = set()
    approvals: list[DecisionRecord] = []
    decided_at = previous.decided_at if sticky else None
    voided = 0
    for index, record in enumerate(spec.decisions):
        prior = previous.outcomes[index] if index < len(previous.outcomes) else None
        if prior is not None and _same(prior, record):
            outcome = prior
        else:
            outcome = judge(record, spec, policy, phase, accepted_approvers, now)
            new.append(outcome)
        if outcome.accepted and outcome.decision is Decision.APPROVE and outcome.plan_digest != spec.plan_digest:
            outcome = _void(outcome, spec)
            voided += 1
        outcomes.append(outcome)
        if not outcome.accepted:
            continue
        accepted_approvers.add(outcome.approver)
        if phase in FINAL:
            continue
        if outcome.decision is Decision.REJECT:
            phase, decided_at = ChangePhase.REJECTED, outcome.seen_at or now
        else:
            approvals.append(record)
            if len(approvals) >= spec.required_approvals:
                phase, decided_at = ChangePhase.APPROVED, outcome.seen_at or now
    if phase is ChangePhase.PENDING and spec.review_deadline is not None and now >= spec.review_deadline:
        phase, decided_at = ChangePhase.EXPIRED, spec.review_deadline
    status = previous.model_copy(
        update={
            "phase": phase,
            "approvals": len(approvals),
            "outcomes": outcomes,
            "effective_conditions": merge_conditions(approvals) if phase is ChangePhase.APPROVED else None,
            "decided_at": decided_at,
            "plan_digest": spec.plan_digest,
        }
    )
    return CabVerdict(status, new, phase if phase is not before else None, voided)
