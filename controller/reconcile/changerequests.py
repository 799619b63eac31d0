"""The ChangeRequest reconcile: judge new CAB decisions, recompute the phase, report each verdict.

Registered in controller/reconcile/reconcilers.py. The rules live in controller/orchestration/cab.py;
this module turns a verdict into status, one Event and one audit row per decision judged (with the
approver as the actor and the reason for a denial or refusal).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controller.api.changerequest import ChangePhase, ChangeRequest, Decision
from controller.api.identity import SYSTEM_USER
from controller.api.kinds import KindInfo
from controller.api.meta import ConditionStatus
from controller.api.policy import Policy
from controller.core import conditions
from controller.core.conditions import accepted_conditions, delta
from controller.core.outcome import Admitted, AuditNote, EventNote, Outcome
from controller.orchestration.cab import CabVerdict, evaluate
from controller.reconcile.admission import admit, rejected
from controller.reconcile.deps import Deps

_READY = {
    ChangePhase.APPROVED: (ConditionStatus.TRUE, "Approved"),
    ChangePhase.REJECTED: (ConditionStatus.FALSE, "Rejected"),
    ChangePhase.EXPIRED: (ConditionStatus.FALSE, "Expired"),
    ChangePhase.REVOKED: (ConditionStatus.FALSE, "Revoked"),
    ChangePhase.PENDING: (ConditionStatus.UNKNOWN, "AwaitingDecisions"),
}


def notes(
    cr: ChangeRequest, verdict: CabVerdict, policy: Policy, correlation_id: str
) -> tuple[list[EventNote], list[AuditNote]]:
    tag = f"[correlation {correlation_id}]"
    events, audits = [], []
    for outcome in verdict.new_outcomes:
        if outcome.accepted:
            reason = "DecisionAccepted"
        elif outcome.reason.startswith("Refused"):
            reason = "DecisionRefused"
        else:
            reason = "DecisionDenied"
        events.append(EventNote(reason, f"{outcome.reason} {tag}", "Normal" if outcome.accepted else "Warning"))
        audits.append(
            AuditNote(
                "CabDecision" + ("Accepted" if outcome.accepted else reason.removeprefix("Decision")),
                outcome.approver,
                outcome.reason,
                {
                    "decision": outcome.decision.value,
                    "role": policy.role_for(outcome.approver).value,
                    "planDigest": outcome.plan_digest,
                },
            )
        )
    status = verdict.status
    if verdict.transition is ChangePhase.APPROVED:
        message = f"Approved by {status.approvals} of {cr.spec.required_approvals} required CAB approvers"
        if status.effective_conditions is not None:
            message += f" with conditions {status.effective_conditions.to_wire()}"
        events.append(EventNote("ChangeApproved", f"{message} {tag}"))
        audits.append(AuditNote("ChangeApproved", SYSTEM_USER, message))
    elif verdict.transition is ChangePhase.REJECTED:
        who = next((o.approver for o in status.outcomes if o.accepted and o.decision is Decision.REJECT), "?")
        message = f"Rejected by {who}"
        events.append(EventNote("ChangeRejected", f"{message} {tag}", "Warning"))
        audits.append(AuditNote("ChangeRejected", SYSTEM_USER, message))
    elif verdict.transition is ChangePhase.EXPIRED:
        message = f"No quorum of {cr.spec.required_approvals} approvals by the review deadline; escalated to the CAB"
        events.append(EventNote("ChangeExpired", f"{message} {tag}", "Warning"))
        audits.append(AuditNote("ChangeExpired", SYSTEM_USER, message))
    elif verdict.transition is ChangePhase.PENDING:
        message = f"The plan changed to {cr.spec.plan_digest[:12]}: earlier approvals are void"
        events.append(EventNote("ApprovalVoided", f"{message} {tag}", "Warning"))
        audits.append(AuditNote("ApprovalVoided", SYSTEM_USER, message))
    return events, audits


async def reconcile_change_request(info: KindInfo, body: dict[str, Any], deps: Deps, now: datetime) -> Outcome:
    """The registered reconcile (a stale body is replaced by the status last written, see StatusMemo)."""
    runtime = deps.orchestration
    if runtime is None:
        return evaluate_body(info, body, deps.policy, now)
    body = runtime.memo.fresh(body)
    outcome = evaluate_body(info, body, deps.policy, now)
    runtime.memo.remember(body, outcome.status)
    return outcome


def evaluate_body(info: KindInfo, body: dict[str, Any], policy: Policy, now: datetime) -> Outcome:
    admitted = admit(info, body)
    if not isinstance(admitted, Admitted):
        return rejected(info, body, admitted, now)
    cr = admitted.resource
    assert isinstance(cr, ChangeRequest)
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    verdict = evaluate(cr.spec, cr.status, policy, now)
    status = verdict.status
    phase = status.phase or ChangePhase.PENDING
    ready_status, ready_reason = _READY[phase]
    message = f"{status.approvals}/{cr.spec.required_approvals} approvals; phase {phase.value}"
    conds = accepted_conditions(
        body,
        generation,
        now,
        [conditions.make("Ready", ready_status, ready_reason, message, generation, now)],
    )
    dumped = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    desired = {
        **{
            k: dumped.get(k)
            for k in ("phase", "approvals", "outcomes", "effectiveConditions", "decidedAt", "planDigest")
        },
        "observedGeneration": generation,
        "conditions": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conds],
    }
    current = body.get("status") or {}
    events, audits = notes(cr, verdict, policy, admitted.correlation_id)
    if not current.get("conditions"):
        events.insert(0, EventNote("Accepted", f"ChangeRequest accepted [correlation {admitted.correlation_id}]"))
        audits.insert(0, AuditNote("Accepted", SYSTEM_USER, "ChangeRequest accepted"))
    # No requeue: a delayed handler holds back the object's next events (new decisions) in Kopf, so the
    # deadline is noticed by the resync timer here and, to the second, by the waiting DeploymentTask.
    return Outcome(
        status=delta(current, desired), labels=admitted.new_labels, events=tuple(events), audits=tuple(audits)
    )
