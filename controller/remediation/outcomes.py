"""What each move of the Remediation machine writes and says, as one `RemediationTransitions`.

Pure builders: escalate, stall, deny, act, wait, plan (dry run), done. Each returns the new typed
status, the Ready condition, an Event and an audit row naming the rule, when to look again, and the
effects `effects.carry_out` performs: the ledger writes, the act message, the sweep's expedite.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.api.assignment import Assignment
from controller.api.identity import SYSTEM_USER
from controller.api.meta import ConditionStatus
from controller.api.policy import RemediationLimits
from controller.api.remediation import (
    Attempt,
    FixAction,
    PolicyDecision,
    RemediationPhase,
    RemediationStatus,
    Verification,
)
from controller.core.outcome import AuditNote, EventNote
from controller.remediation.backoff import AttemptOutcome, poll_seconds
from controller.remediation.classifying import target_of
from controller.remediation.deciding import Decision, Verdict
from controller.remediation.ledger import NewAttempt, RecordInfo
from controller.remediation.ports import ActRequest
from controller.remediation.situation import RemediationView

TERMINAL = {
    Verdict.ESCALATE: (RemediationPhase.ESCALATED, "Escalated"),
    Verdict.STALL: (RemediationPhase.STALLED, "Stalled"),
    Verdict.DENY: (RemediationPhase.DENIED, "RemediationDenied"),
}


@dataclass(frozen=True)
class RemediationTransitions:
    """What one pass decided: the status to write and what to say, then the effects to carry out."""

    status: RemediationStatus
    ready: tuple[ConditionStatus, str, str] | None = None
    events: tuple[EventNote, ...] = ()
    audits: tuple[AuditNote, ...] = ()
    requeue_after_seconds: float | None = None
    #: Nothing to do (a final phase): the status is not rewritten.
    idle: bool = False
    #: Log lines (the correlation ID is added when they are written).
    logs: tuple[str, ...] = ()
    #: Ledger writes, in order: close records of Remediations that are gone, start or finish an attempt.
    close: tuple[RecordInfo, ...] = ()
    start: NewAttempt | None = None
    #: What this pass says instead when the ledger refuses `start` (a limit was reached meanwhile).
    if_limited: RemediationTransitions | None = None
    finish: tuple[int, AttemptOutcome] | None = None
    record: RecordInfo | None = None
    #: The act message to send once the attempt is in the ledger.
    act: ActRequest | None = None
    #: The Assignment uid the drift sweep should check at its next tick.
    expedite: str | None = None

    @property
    def phase(self) -> RemediationPhase:
        return self.status.phase or RemediationPhase.PENDING


def waiting_for(status: RemediationStatus, seconds: float) -> RemediationTransitions:
    """Change nothing; look again in `seconds`."""
    return RemediationTransitions(status=status, requeue_after_seconds=seconds)


def policy_status(decision: Decision) -> PolicyDecision:
    return PolicyDecision(
        allowed=decision.allowed, reason=decision.reason[:1024], rule=decision.rule, window=decision.window
    )


def _kind_and_action(decision: Decision) -> dict[str, Any]:
    return {
        **({"drift_type": decision.drift_type} if decision.drift_type else {}),
        **({"action": decision.action} if decision.action else {}),
    }


def terminal(view: RemediationView, decision: Decision, **extra: Any) -> RemediationTransitions:
    """Escalated, Stalled or Denied: a person must look; nothing is touched."""
    phase, reason = TERMINAL[decision.verdict]
    review = decision.verdict is not Verdict.DENY
    status = view.status.model_copy(
        update={
            "phase": phase,
            "policy": policy_status(decision),
            "requires_human_review": review,
            "next_attempt_at": None,
            **_kind_and_action(decision),
            **extra,
        }
    )
    text = f"{decision.rule}: {decision.reason}" + ("; a person must review" if review else "")
    detail = {"rule": decision.rule, "requestedBy": view.spec.requested_by}
    return RemediationTransitions(
        status=status,
        ready=(ConditionStatus.FALSE, decision.rule, text),
        events=(EventNote(reason, text, "Warning"),),
        audits=(AuditNote(phase.value, SYSTEM_USER, text, detail),),
        logs=(f"{phase.value} by rule {decision.rule}: {decision.reason}",),
    )


def deny(view: RemediationView, decision: Decision) -> RemediationTransitions:
    return terminal(view, decision)


def started(
    view: RemediationView,
    asg: Assignment,
    number: int,
    decision: Decision,
    limits: RemediationLimits,
    now: datetime,
    **extra: Any,
) -> RemediationTransitions:
    """Hand attempt `number` to a worker (the act message goes out once the ledger holds the attempt)."""
    assert decision.drift_type is not None
    action = decision.action or FixAction.UPDATE
    target = target_of(asg.spec).key
    drift = decision.drift_type.value
    text = f"Attempt {number} of {limits.max_attempts}: {action.value} {target} ({drift})"
    status = view.status.model_copy(
        update={
            **extra,
            "phase": RemediationPhase.REMEDIATING,
            "drift_type": decision.drift_type,
            "action": action,
            "attempts": number,
            "current_attempt": Attempt(number=number, action=action, started_at=now),
            "policy": policy_status(decision),
            "next_attempt_at": None,
            "requires_human_review": False,
            "locked_spec": view.status.locked_spec or view.spec,
        }
    )
    detail = {
        "attempt": number,
        "action": action.value,
        "driftType": drift,
        "target": target,
        "rule": decision.rule,
        "requestedBy": view.spec.requested_by,
    }
    request = ActRequest(view.namespace, view.name, view.uid, number, view.correlation_id, asg.metadata.name)
    return RemediationTransitions(
        status=status,
        ready=(ConditionStatus.UNKNOWN, "Remediating", text),
        events=(EventNote("Remediating", text),),
        audits=(AuditNote("RemediationStarted", SYSTEM_USER, text, detail),),
        requeue_after_seconds=poll_seconds(limits),
        logs=(text,),
        act=request,
    )


def waiting(
    view: RemediationView, decision: Decision, limits: RemediationLimits, now: datetime, **extra: Any
) -> RemediationTransitions:
    """Not now: a window, a rollout, backoff or a rate limit; look again when it may have changed."""
    st = view.status
    status = st.model_copy(
        update={
            "phase": RemediationPhase.PENDING,
            "policy": policy_status(decision),
            "next_attempt_at": decision.next_at,
            **_kind_and_action(decision),
            **extra,
        }
    )
    changed = st.policy is None or st.policy.rule != decision.rule or st.phase is not RemediationPhase.PENDING
    text = f"Waiting ({decision.rule}): {decision.reason}"
    delay = poll_seconds(limits) * 2
    if decision.next_at is not None:
        delay = min(300.0, max(0.5, (decision.next_at - now).total_seconds()))
    detail = {"rule": decision.rule, "window": decision.window}
    return RemediationTransitions(
        status=status,
        ready=(ConditionStatus.UNKNOWN, decision.rule, text),
        events=(EventNote("Waiting", text),) if changed else (),
        audits=(AuditNote("RemediationWaiting", SYSTEM_USER, text, detail),) if changed else (),
        requeue_after_seconds=delay,
        logs=(text,) if changed else (),
    )


def planned(view: RemediationView, decision: Decision, **extra: Any) -> RemediationTransitions:
    """A dry run: report what would be done, touch nothing."""
    status = view.status.model_copy(
        update={
            "phase": RemediationPhase.PLANNED,
            "planned": decision.reason[:1024],
            "policy": policy_status(decision),
            **_kind_and_action(decision),
            **extra,
        }
    )
    return RemediationTransitions(
        status=status,
        ready=(ConditionStatus.TRUE, "DryRun", decision.reason[:1024]),
        events=(EventNote("DryRun", decision.reason),),
        audits=(AuditNote("DryRunPlanned", SYSTEM_USER, decision.reason, {"rule": decision.rule}),),
        logs=(decision.reason,),
    )


def nothing_to_do(view: RemediationView, decision: Decision, now: datetime, **extra: Any) -> RemediationTransitions:
    verification = Verification(verified=True, at=now, detail="No drift observed; nothing was changed")
    status = view.status.model_copy(
        update={
            "phase": RemediationPhase.SUCCEEDED,
            "policy": policy_status(decision),
            "verification": verification,
            **extra,
        }
    )
    return RemediationTransitions(
        status=status,
        ready=(ConditionStatus.TRUE, "NoDrift", decision.reason),
        events=(EventNote("NothingToDo", decision.reason),),
        audits=(AuditNote("NothingToDo", SYSTEM_USER, decision.reason),),
        logs=(decision.reason,),
    )
