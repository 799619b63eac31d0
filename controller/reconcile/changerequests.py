"""The ChangeRequest reconcile: check it against its task, judge new CAB decisions, report each verdict.

Registered in controller/reconcile/reconcilers.py. Every spec field but `decisions` is the
controller's (controller/orchestration/ownership.py): it is derived from the DeploymentTask's own
status, a tampered field is named (`Tampered` condition, Event, audit row) and restored, and the
decisions are judged against the derived spec, never the ChangeRequest's copy. A ChangeRequest whose
task does not exist, or that its task did not open, approves nothing; one whose task ended is closed
(`Withdrawn`, or `Expired` with the task). The rules live in controller/orchestration/cab.py; this
module turns a verdict into status, one Event and one audit row per decision judged (with the
approver as the actor and the reason for a denial or refusal).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from controller.api.changerequest import ChangePhase, ChangeRequest, ChangeRequestSpec, Decision
from controller.api.deploymenttask import FINAL_PHASES, DeploymentTaskStatus, TaskPhase
from controller.api.identity import SYSTEM_USER
from controller.api.kinds import KindInfo
from controller.api.labels import CREATED_BY_ANNOTATION
from controller.api.meta import Condition, ConditionStatus
from controller.api.policy import Policy
from controller.core import conditions
from controller.core.conditions import accepted_conditions, delta
from controller.core.outcome import Admitted, AuditNote, EventNote, Outcome
from controller.orchestration.cab import FINAL, CabVerdict, evaluate
from controller.orchestration.ownership import owned_spec, tampered_fields
from controller.reconcile.admission import admit, rejected
from controller.reconcile.deps import Deps
from controller.reconcile.stamping import created_by

_READY = {
    ChangePhase.APPROVED: (ConditionStatus.TRUE, "Approved"),
    ChangePhase.REJECTED: (ConditionStatus.FALSE, "Rejected"),
    ChangePhase.EXPIRED: (ConditionStatus.FALSE, "Expired"),
    ChangePhase.REVOKED: (ConditionStatus.FALSE, "Revoked"),
    ChangePhase.WITHDRAWN: (ConditionStatus.FALSE, "Withdrawn"),
    ChangePhase.PENDING: (ConditionStatus.UNKNOWN, "AwaitingDecisions"),
}
TAMPERED = "Tampered"


@dataclass(frozen=True)
class Judged:
    """The Outcome of one pass, and the spec fields to write back (the controller's, when tampered)."""

    outcome: Outcome
    restore: dict[str, Any] | None = None


def notes(
    spec: ChangeRequestSpec, verdict: CabVerdict, policy: Policy, correlation_id: str
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
    for outcome in verdict.rewritten:
        message = f"The {outcome.rewritten}; its verdict ({'accepted' if outcome.accepted else 'not accepted'}) stands"
        events.append(EventNote("DecisionRewritten", f"{message} {tag}", "Warning"))
        audits.append(AuditNote("CabDecisionRewritten", SYSTEM_USER, message, {"approver": outcome.approver}))
    status = verdict.status
    if verdict.transition is ChangePhase.APPROVED:
        message = f"Approved by {status.approvals} of {spec.required_approvals} required CAB approvers"
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
        message = f"No quorum of {spec.required_approvals} approvals by the review deadline; escalated to the CAB"
        events.append(EventNote("ChangeExpired", f"{message} {tag}", "Warning"))
        audits.append(AuditNote("ChangeExpired", SYSTEM_USER, message))
    elif verdict.transition is ChangePhase.PENDING:
        message = f"The plan changed to {spec.plan_digest[:12]}: earlier approvals are void"
        events.append(EventNote("ApprovalVoided", f"{message} {tag}", "Warning"))
        audits.append(AuditNote("ApprovalVoided", SYSTEM_USER, message))
    return events, audits


async def reconcile_change_request(info: KindInfo, body: dict[str, Any], deps: Deps, now: datetime) -> Outcome:
    """The registered reconcile (a stale body is replaced by the status last written, see StatusMemo)."""
    runtime = deps.orchestration
    if runtime is None:
        return evaluate_body(info, body, deps.policy, now, None).outcome
    body = runtime.memo.fresh(body)
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    namespace = str(meta.get("namespace") or "default")
    task = None
    if isinstance(spec.get("task"), str) and spec["task"]:
        task = await runtime.world.task_body(namespace, spec["task"])
    judged = evaluate_body(info, body, deps.policy, now, task)
    if judged.restore:
        await runtime.world.restore_change_request(namespace, str(meta.get("name")), judged.restore)
    runtime.memo.remember(body, judged.outcome.status)
    return judged.outcome


def _opened_by_task(body: dict[str, Any], cr: ChangeRequest, task: dict[str, Any] | None, policy: Policy) -> str | None:
    """Why the ChangeRequest approves nothing (its task does not exist or did not open it), or None."""
    name, namespace = cr.metadata.name, cr.metadata.namespace or "default"
    if task is None:
        return f"DeploymentTask {cr.spec.task} does not exist in {namespace}: this ChangeRequest approves nothing"
    meta = task.get("metadata") or {}
    status = task.get("status") or {}
    owners = {str(o.get("uid")) for o in (body.get("metadata") or {}).get("ownerReferences") or []}
    creator = ((body.get("metadata") or {}).get("annotations") or {}).get(CREATED_BY_ANNOTATION)
    opened = status.get("changeRequest") == name and str(meta.get("uid") or meta.get("name")) in owners
    if creator is not None and policy.identity.controller and creator != created_by(policy.identity.controller):
        opened = False
    if not opened:
        return (
            f"DeploymentTask {cr.spec.task} did not open ChangeRequest {name} (the controller opens one per task): "
            "it approves nothing"
        )
    return None


def _closing(task_phase: str | None) -> ChangePhase:
    return ChangePhase.EXPIRED if task_phase == TaskPhase.EXPIRED.value else ChangePhase.WITHDRAWN


def evaluate_body(
    info: KindInfo, body: dict[str, Any], policy: Policy, now: datetime, task: dict[str, Any] | None
) -> Judged:
    """One pass over `body` given its task as read (None: no such task); pure."""
    admitted = admit(info, body)
    if not isinstance(admitted, Admitted):
        return Judged(rejected(info, body, admitted, now))
    cr = admitted.resource
    assert isinstance(cr, ChangeRequest)
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    current = body.get("status") or {}
    tag = f"[correlation {admitted.correlation_id}]"
    events: list[EventNote] = []
    audits: list[AuditNote] = []
    if not current.get("conditions"):
        events.append(EventNote("Accepted", f"ChangeRequest accepted {tag}"))
        audits.append(AuditNote("Accepted", SYSTEM_USER, "ChangeRequest accepted"))
    orphan = _opened_by_task(body, cr, task, policy)
    owned = None
    task_status = DeploymentTaskStatus()
    if orphan is None and task is not None:
        try:
            task_status = DeploymentTaskStatus.model_validate(task.get("status") or {})
        except ValidationError:
            task_status = DeploymentTaskStatus()
        owned = owned_spec(cr.spec.task, task_status)
    if orphan is not None:
        reason = "NotOpenedByController"
        ready = conditions.make("Ready", ConditionStatus.FALSE, reason, orphan, generation, now)
        conds = accepted_conditions(body, generation, now, [ready])
        was = conditions.find(conditions.current_conditions(body), "Ready")
        if was is None or was.reason != reason:
            events.append(EventNote(reason, f"{orphan} {tag}", "Warning"))
            audits.append(AuditNote(reason, SYSTEM_USER, orphan))
        desired = {
            "phase": current.get("phase") or ChangePhase.PENDING.value,
            "approvals": 0,
            "observedGeneration": generation,
            "conditions": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conds],
        }
        return Judged(
            Outcome(
                status=delta(current, desired), labels=admitted.new_labels, events=tuple(events), audits=tuple(audits)
            )
        )
    extra: list[Condition] = []
    # While the task re-plans it has no spec for this ChangeRequest: decisions are judged against the
    # copy it wrote last (the task counts them against its own plan and quorum anyway).
    owned = owned or cr.spec
    tampered = tampered_fields(owned, cr.spec)
    restore = None
    if tampered:
        names = ", ".join(f"spec.{k}" for k in tampered)
        message = f"{names} changed by someone other than the controller; restored: " + "; ".join(
            f"spec.{k} {found!r} -> {mine!r}" for k, (found, mine) in tampered.items()
        )
        extra.append(conditions.make(TAMPERED, True, "FieldsRestored", message[:1024], generation, now))
        events.append(EventNote("Tampered", f"{message} {tag}"[:1024], "Warning"))
        audits.append(
            AuditNote(
                "ChangeRequestTampered",
                SYSTEM_USER,
                message,
                {k: {"found": f, "restored": m} for k, (f, m) in tampered.items()},
            )
        )
        wire = owned.model_dump(mode="json", by_alias=True)
        restore = {k: wire.get(k) for k in tampered}
    previous = cr.status
    closing = None
    if task_status.phase in FINAL_PHASES and (previous.phase or ChangePhase.PENDING) not in FINAL:
        closing = _closing(task_status.phase.value if task_status.phase else None)
        previous = previous.model_copy(update={"phase": closing, "decided_at": now})
    spec = owned.model_copy(update={"decisions": cr.spec.decisions})
    verdict = evaluate(spec, previous, policy, now)
    status = verdict.status
    phase = status.phase or ChangePhase.PENDING
    ready_status, ready_reason = _READY[phase]
    message = f"{status.approvals}/{spec.required_approvals} approvals; phase {phase.value}"
    if closing is not None:
        task_phase = task_status.phase.value if task_status.phase else "?"
        message = f"DeploymentTask {cr.spec.task} ended {task_phase}: this ChangeRequest is closed ({closing.value})"
        events.append(EventNote(f"Change{closing.value}", f"{message} {tag}", "Warning"))
        audits.append(AuditNote(f"Change{closing.value}", SYSTEM_USER, message))
    if verdict.rewritten:
        text = "; ".join(o.rewritten or "" for o in verdict.rewritten)
        extra.append(
            conditions.make(TAMPERED, True, "DecisionRewritten", f"{text}; verdicts stand"[:1024], generation, now)
        )
    conds = accepted_conditions(
        body,
        generation,
        now,
        [conditions.make("Ready", ready_status, ready_reason, message, generation, now), *extra],
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
    more_events, more_audits = notes(spec, verdict, policy, admitted.correlation_id)
    events.extend(more_events)
    audits.extend(more_audits)
    # No requeue: a delayed handler holds back the object's next events (new decisions) in Kopf, so the
    # deadline is noticed by the resync timer here and, to the second, by the waiting DeploymentTask.
    return Judged(
        Outcome(status=delta(current, desired), labels=admitted.new_labels, events=tuple(events), audits=tuple(audits)),
        restore,
    )
