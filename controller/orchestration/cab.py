"""CAB evaluation of a ChangeRequest (docs/domain.md §4): separation of duties, quorum, expiry, plan binding.

Pure. `evaluate` judges each decision in `spec.decisions` exactly once, when first seen, and records
the verdict in `status.outcomes`, which only grows: a decision found there (same approver, verdict and
conditions) keeps its verdict, and a judged decision later edited or removed keeps it too and is
flagged, so re-running the reconcile, or rewriting the spec, changes no outcome. Rules:
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

FINAL = frozenset(
    {ChangePhase.APPROVED, ChangePhase.REJECTED, ChangePhase.EXPIRED, ChangePhase.REVOKED, ChangePhase.WITHDRAWN}
)
#: Final phases a change of plan does not reopen (an approval is voided by it; a rejection is not).
STICKY = frozenset({ChangePhase.REJECTED, ChangePhase.EXPIRED, ChangePhase.REVOKED, ChangePhase.WITHDRAWN})


@dataclass(frozen=True)
class CabVerdict:
    """The new status, the outcomes judged for the first time, and the phase change (if any)."""

    status: ChangeRequestStatus
    new_outcomes: list[DecisionOutcome] = field(default_factory=list)
    transition: ChangePhase | None = None
    voided: int = 0
    rewritten: list[DecisionOutcome] = field(default_factory=list)


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
            conditions=record.conditions,
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


def merge_conditions(records: list[DecisionOutcome]) -> ApprovalConditions | None:
    """The strictest combination of the conditions attached to accepted approvals (as first seen)."""
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


def _signature(approver: str, decision: Decision, conditions: ApprovalConditions | None) -> tuple[object, ...]:
    return (approver, decision, conditions.to_wire() if conditions is not None else None)


def _record_signature(record: DecisionRecord) -> tuple[object, ...]:
    return _signature(record.approver, record.decision, record.conditions)


def _outcome_signature(outcome: DecisionOutcome) -> tuple[object, ...]:
    return _signature(outcome.approver, outcome.decision, outcome.conditions)


def _match(spec: ChangeRequestSpec, judged: list[DecisionOutcome]) -> tuple[list[DecisionRecord], set[int]]:
    """The decisions not judged yet, and the indexes of judged outcomes still found in the spec."""
    found: set[int] = set()
    fresh: list[DecisionRecord] = []
    for record in spec.decisions:
        wanted = _record_signature(record)
        index = next(
            (i for i, o in enumerate(judged) if i not in found and _outcome_signature(o) == wanted),
            None,
        )
        if index is None:
            fresh.append(record)
        else:
            found.add(index)
    return fresh, found


def evaluate(spec: ChangeRequestSpec, previous: ChangeRequestStatus, policy: Policy, now: datetime) -> CabVerdict:
    """Judge new decisions and recompute the phase (see the module docstring for the rules).

    `status.outcomes` is the record: a decision is judged once, when first seen, and its verdict
    stands. A judged decision that is later edited or removed from `spec.decisions` keeps its verdict
    and is marked `rewritten` (reported once, in `rewritten_now`); an edited one is a new decision.
    """
    before = previous.phase or ChangePhase.PENDING
    sticky = before if before in STICKY else None
    judged = list(previous.outcomes)
    fresh, found = _match(spec, judged)
    rewritten_now: list[DecisionOutcome] = []
    for index, outcome in enumerate(judged):
        if index not in found and outcome.rewritten is None:
            note = (
                f"decision by {outcome.approver} ({outcome.decision.value}) was edited or removed after it was judged"
            )
            judged[index] = outcome.model_copy(update={"rewritten": note})
            rewritten_now.append(judged[index])
    phase, decided_at, approvals, accepted_approvers, outcomes, voided = _tally(
        judged, spec, sticky, previous.decided_at if sticky else None, now
    )
    new: list[DecisionOutcome] = []
    for record in fresh:
        if len(outcomes) >= MAX_OUTCOMES:
            break
        outcome = judge(record, spec, policy, phase, accepted_approvers, now)
        new.append(outcome)
        outcomes.append(outcome)
        if not outcome.accepted:
            continue
        accepted_approvers.add(outcome.approver)
        if phase in FINAL:
            continue
        if outcome.decision is Decision.REJECT:
            phase, decided_at = ChangePhase.REJECTED, now
        else:
            approvals.append(outcome)
            if len(approvals) >= spec.required_approvals:
                phase, decided_at = ChangePhase.APPROVED, now
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
    return CabVerdict(status, new, phase if phase is not before else None, voided, rewritten_now)


#: The most outcomes a ChangeRequest records (the status schema's limit).
MAX_OUTCOMES = 40


def _tally(
    judged: list[DecisionOutcome],
    spec: ChangeRequestSpec,
    sticky: ChangePhase | None,
    decided_at: datetime | None,
    now: datetime,
) -> tuple[ChangePhase, datetime | None, list[DecisionOutcome], set[str], list[DecisionOutcome], int]:
    """The phase the judged outcomes add up to (approvals of an older plan are void)."""
    phase = sticky or ChangePhase.PENDING
    approvals: list[DecisionOutcome] = []
    accepted_approvers: set[str] = set()
    outcomes: list[DecisionOutcome] = []
    voided = 0
    for outcome in judged:
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
            approvals.append(outcome)
            if len(approvals) >= spec.required_approvals:
                phase, decided_at = ChangePhase.APPROVED, outcome.seen_at or now
    return phase, decided_at, approvals, accepted_approvers, outcomes, voided
