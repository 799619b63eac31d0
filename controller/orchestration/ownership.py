"""What the controller wrote on a ChangeRequest, and what it counts from one (docs/domain.md §4.1).

Pure. Every field of a ChangeRequest's spec but `decisions` is the controller's: `owned_spec` derives
it from the DeploymentTask's own status (plan, risk assessment, evidence, review deadline), so the
ChangeRequest reconcile can name and restore a tampered field, and `verdict_for` lets the task count
the CAB's decisions against its own plan and quorum, never against the ChangeRequest's copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.api.changerequest import ChangePhase, ChangeRequestSpec, Decision, DecisionOutcome
from controller.api.deploymenttask import ApprovalConditions, DeploymentTaskStatus
from controller.orchestration.cab import merge_conditions

#: The spec fields the controller owns, as they are spelt on the wire.
OWNED_FIELDS = (
    "task",
    "app",
    "version",
    "maxRing",
    "riskScore",
    "evidence",
    "planDigest",
    "requiredApprovals",
    "submittedBy",
    "reviewDeadline",
)


def owned_spec(task_name: str, status: DeploymentTaskStatus) -> ChangeRequestSpec | None:
    """The spec the controller wrote for the task's ChangeRequest; None while it has none."""
    plan, risk, approval = status.plan, status.risk, status.approval
    if plan is None or risk is None or approval is None or approval.mode != "ChangeRequest":
        return None
    return ChangeRequestSpec(
        task=task_name,
        app=plan.app,
        version=plan.version,
        max_ring=plan.max_ring,
        risk_score=risk.score,
        evidence=status.evidence,
        plan_digest=plan.digest,
        required_approvals=risk.required_approvals or 1,
        submitted_by=plan.submitter,
        review_deadline=approval.review_deadline,
    )


def tampered_fields(owned: ChangeRequestSpec, found: ChangeRequestSpec) -> dict[str, tuple[object, object]]:
    """wire name -> (found, owned) for every controller-owned field that differs."""
    mine = owned.model_dump(mode="json", by_alias=True)
    theirs = found.model_dump(mode="json", by_alias=True)
    return {name: (theirs.get(name), mine.get(name)) for name in OWNED_FIELDS if theirs.get(name) != mine.get(name)}


@dataclass(frozen=True)
class CabCount:
    """The CAB's decision on the task's plan as the task counts it."""

    phase: ChangePhase | None
    approvals: int
    required: int
    conditions: ApprovalConditions | None


def verdict_for(
    outcomes: list[DecisionOutcome], phase: ChangePhase | None, digest: str, submitter: str, required: int
) -> CabCount:
    """Count accepted decisions for `digest` by approvers other than `submitter`, one per approver.

    Approved only when `required` (the task's own quorum) such approvals exist; Rejected on one accepted
    rejection; Expired when the ChangeRequest says so; otherwise undecided (None).
    """
    seen: set[str] = set()
    approvals: list[DecisionOutcome] = []
    for outcome in outcomes:
        if not outcome.accepted or outcome.approver == submitter or outcome.approver in seen:
            continue
        if outcome.plan_digest != digest:
            continue
        seen.add(outcome.approver)
        if outcome.decision is Decision.REJECT:
            return CabCount(ChangePhase.REJECTED, len(approvals), required, None)
        approvals.append(outcome)
        if len(approvals) >= required:
            return CabCount(ChangePhase.APPROVED, len(approvals), required, merge_conditions(approvals))
    decided = phase if phase in (ChangePhase.EXPIRED, ChangePhase.WITHDRAWN) else None
    return CabCount(decided, len(approvals), required, None)
