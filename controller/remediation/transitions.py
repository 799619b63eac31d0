"""Step builders of the Remediation controller: what each outcome of a pass writes and says.

Each returns a `Step` (status fields, the Ready condition, an Event, an audit row naming the rule,
when to look again) for one transition: escalate, stall, deny, act, wait, plan (dry run), done.
Pure, apart from handing an attempt to a worker through `Engine.enqueue`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.api.assignment import Assignment
from controller.api.meta import ConditionStatus
from controller.api.remediation import (
    SYSTEM_USER,
    Attempt,
    FixAction,
    PolicyDecision,
    Remediation,
    RemediationPhase,
    Verification,
)
from controller.core.errors import Unavailable
from controller.core.outcome import AuditNote, EventNote
from controller.remediation.backoff import AttemptRecord
from controller.remediation.classifying import target_of
from controller.remediation.deciding import Decision, Verdict
from controller.remediation.detecting import stamp
from controller.remediation.stepping import ActRequest, Engine, Step, poll_seconds

logger = logging.getLogger(__name__)

SYSTEM = SYSTEM_USER
_P = RemediationPhase
TERMINAL = {
    Verdict.ESCALATE: (_P.ESCALATED, "Escalated"),
    Verdict.STALL: (_P.STALLED, "Stalled"),
    Verdict.DENY: (_P.DENIED, "RemediationDenied"),
}


def dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True) if model is not None else None


@dataclass
class Context:
    """One pass over one Remediation."""

    engine: Engine
    rem: Remediation
    correlation_id: str
    now: datetime

    @property
    def namespace(self) -> str:
        return self.rem.metadata.namespace or "default"

    @property
    def name(self) -> str:
        return self.rem.metadata.name

    @property
    def uid(self) -> str:
        return self.rem.metadata.uid or f"{self.namespace}/{self.name}"

    def log(self, message: str, *args: Any) -> None:
        logger.info(
            "Remediation %s/%s: " + message + " (correlation %s)",
            self.namespace,
            self.name,
            *args,
            self.correlation_id,
        )


def policy_status(decision: Decision) -> dict[str, Any]:
    policy = PolicyDecision(
        allowed=decision.allowed, reason=decision.reason[:1024], rule=decision.rule, window=decision.window
    )
    return policy.model_dump(mode="json", by_alias=True, exclude_none=True)


def terminal(ctx: Context, decision: Decision, extra: dict[str, Any] | None = None) -> Step:
    """Escalated, Stalled or Denied: a person must look; nothing is touched."""
    phase, reason = TERMINAL[decision.verdict]
    review = decision.verdict is not Verdict.DENY
    status = {
        "phase": phase.value,
        "policy": policy_status(decision),
        "requiresHumanReview": review,
        "nextAttemptAt": None,
        **({"driftType": decision.drift_type.value} if decision.drift_type else {}),
        **({"action": decision.action.value} if decision.action else {}),
        **(extra or {}),
    }
    text = f"{decision.rule}: {decision.reason}" + ("; a person must review" if review else "")
    ctx.log("%s by rule %s: %s", phase.value, decision.rule, decision.reason)
    return Step(
        status=status,
        ready=(ConditionStatus.FALSE, decision.rule, text),
        events=(EventNote(reason, text, "Warning"),),
        audits=(
            AuditNote(phase.value, SYSTEM, text, {"rule": decision.rule, "requestedBy": ctx.rem.spec.requested_by}),
        ),
    )


def deny(ctx: Context, rule: str, reason: str) -> Step:
    return terminal(ctx, Decision(Verdict.DENY, rule, reason))


def started(
    ctx: Context,
    asg: Assignment,
    record: AttemptRecord,
    decision: Decision,
    extra: dict[str, Any] | None = None,
) -> Step:
    """Hand attempt `record.number` to a worker."""
    engine = ctx.engine
    if engine.enqueue is None:
        raise Unavailable("No broker to hand the fix to a worker (RINGPILOT_REDIS_URL unset)", 10.0)
    action = decision.action or FixAction.UPDATE
    engine.enqueue(ActRequest(ctx.namespace, ctx.name, ctx.uid, record.number, ctx.correlation_id, asg.metadata.name))
    limits = engine.policy.remediation
    target = target_of(asg.spec).key
    text = f"Attempt {record.number} of {limits.max_attempts}: {action.value} {target} ({record.drift_type.value})"
    ctx.log("%s", text)
    attempt = Attempt(number=record.number, action=action, started_at=ctx.now)
    return Step(
        status={
            **(extra or {}),
            "phase": _P.REMEDIATING.value,
            "driftType": record.drift_type.value,
            "action": action.value,
            "attempts": record.number,
            "currentAttempt": dump(attempt),
            "policy": policy_status(decision),
            "nextAttemptAt": None,
            "requiresHumanReview": False,
        },
        ready=(ConditionStatus.UNKNOWN, "Remediating", text),
        events=(EventNote("Remediating", text),),
        audits=(
            AuditNote(
                "RemediationStarted",
                SYSTEM,
                text,
                {
                    "attempt": record.number,
                    "action": action.value,
                    "driftType": record.drift_type.value,
                    "target": target,
                    "rule": decision.rule,
                    "requestedBy": ctx.rem.spec.requested_by,
                },
            ),
        ),
        requeue_after_seconds=poll_seconds(engine.policy),
    )


def waiting(ctx: Context, decision: Decision, extra: dict[str, Any]) -> Step:
    """Not now: a window, a rollout, backoff or a rate limit; look again when it may have changed."""
    st = ctx.rem.status
    status = {
        "phase": _P.PENDING.value,
        "policy": policy_status(decision),
        "nextAttemptAt": stamp(decision.next_at) if decision.next_at else None,
        **({"driftType": decision.drift_type.value} if decision.drift_type else {}),
        **({"action": decision.action.value} if decision.action else {}),
        **extra,
    }
    changed = st.policy is None or st.policy.rule != decision.rule or st.phase is not _P.PENDING
    text = f"Waiting ({decision.rule}): {decision.reason}"
    if changed:
        ctx.log("%s", text)
    delay = poll_seconds(ctx.engine.policy) * 2
    if decision.next_at is not None:
        delay = min(300.0, max(0.5, (decision.next_at - ctx.now).total_seconds()))
    return Step(
        status=status,
        ready=(ConditionStatus.UNKNOWN, decision.rule, text),
        events=(EventNote("Waiting", text),) if changed else (),
        audits=(AuditNote("RemediationWaiting", SYSTEM, text, {"rule": decision.rule, "window": decision.window}),)
        if changed
        else (),
        requeue_after_seconds=delay,
    )


def planned(ctx: Context, decision: Decision, extra: dict[str, Any]) -> Step:
    """A dry run: report what would be done, touch nothing."""
    ctx.log("%s", decision.reason)
    status = {
        "phase": _P.PLANNED.value,
        "planned": decision.reason[:1024],
        "policy": policy_status(decision),
        **({"driftType": decision.drift_type.value} if decision.drift_type else {}),
        **({"action": decision.action.value} if decision.action else {}),
        **extra,
    }
    return Step(
        status=status,
        ready=(ConditionStatus.TRUE, "DryRun", decision.reason[:1024]),
        events=(EventNote("DryRun", decision.reason),),
        audits=(AuditNote("DryRunPlanned", SYSTEM, decision.reason, {"rule": decision.rule}),),
    )


def nothing_to_do(ctx: Context, decision: Decision, extra: dict[str, Any]) -> Step:
    ctx.log("%s", decision.reason)
    verification = Verification(verified=True, at=ctx.now, detail="No drift observed; nothing was changed")
    return Step(
        status={
            "phase": _P.SUCCEEDED.value,
            "policy": policy_status(decision),
            "verification": dump(verification),
            **extra,
        },
        ready=(ConditionStatus.TRUE, "NoDrift", decision.reason),
        events=(EventNote("NothingToDo", decision.reason),),
        audits=(AuditNote("NothingToDo", SYSTEM, decision.reason),),
    )
