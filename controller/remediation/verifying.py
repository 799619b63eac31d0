"""The Remediation controller after the fix was handed over: wait for the worker, then verify.

Remediating: the worker's outcome is read from its step claim (`act_key`); a refused fix is Failed.
Verifying: the drift must be gone and the target healthy (rolled out, available) for the settle
period. A fix that does not verify backs off and is retried, then escalates after `maxAttempts`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from controller.api.assignment import Assignment, DriftType
from controller.api.meta import ConditionStatus
from controller.api.remediation import (
    Attempt,
    RemediationPhase,
    Verification,
)
from controller.core.errors import Unavailable
from controller.core.outcome import AuditNote, EventNote
from controller.planes.base import PlaneError
from controller.remediation.backoff import AttemptOutcome, backoff_seconds, counted
from controller.remediation.classifying import Assessment, classify, target_of
from controller.remediation.deciding import Decision, Verdict
from controller.remediation.detecting import stamp
from controller.remediation.stepping import Step, act_key, poll_seconds
from controller.remediation.transitions import SYSTEM, Context, dump, policy_status, terminal

logger = logging.getLogger(__name__)
_P = RemediationPhase


async def observe(ctx: Context, asg: Assignment) -> Assessment:
    """Observe the Assignment's one target and classify it."""
    target = target_of(asg.spec)
    try:
        found = await ctx.engine.planes.get(target.plane).observe([target])
    except PlaneError as error:
        if error.transient:
            raise Unavailable(str(error), 2.0) from error
        found = []
    grace = ctx.engine.policy.remediation.service_down_grace_seconds
    return classify(asg.spec, found[0] if found else None, ctx.now, grace_seconds=grace)


async def remediating(ctx: Context, asg: Assignment) -> Step:
    """Wait for the worker's outcome of the current attempt."""
    attempt = ctx.rem.status.current_attempt
    if attempt is None:
        return Step(status={"phase": RemediationPhase.PENDING.value}, requeue_after_seconds=0.5)
    claim = await ctx.engine.claim(act_key(ctx.uid, attempt.number))
    limits = ctx.engine.policy.remediation
    if claim is None or not claim.finished:
        started_at = attempt.started_at or ctx.now
        if ctx.now - started_at > timedelta(seconds=limits.timeout_seconds):
            return await failed_attempt(ctx, asg, attempt, f"the fix did not finish within {limits.timeout_seconds}s")
        return Step(requeue_after_seconds=poll_seconds(ctx.engine.policy))
    outcome = claim.outcome or {}
    detail = str(outcome.get("detail", ""))[:1024]
    acted = replace_attempt(attempt, acted_at=claim.finished_at or ctx.now, result=detail)
    if not outcome.get("ok"):
        await ctx.engine.ledger.finish_attempt(ctx.uid, attempt.number, AttemptOutcome.FAILED, ctx.now)
        text = f"{attempt.action.value} failed: {detail}"
        ctx.log("%s", text)
        return Step(
            status={"phase": _P.FAILED.value, "currentAttempt": dump(acted), "requiresHumanReview": True},
            ready=(ConditionStatus.FALSE, "FixFailed", text),
            events=(EventNote("FixFailed", text, "Warning"),),
            audits=(AuditNote("FixFailed", SYSTEM, text, {"attempt": attempt.number}),),
        )
    settle = limits.settle_seconds
    text = f"{attempt.action.value} applied ({detail}); verifying for {settle}s"
    ctx.log("%s", text)
    return Step(
        status={"phase": _P.VERIFYING.value, "currentAttempt": dump(acted)},
        ready=(ConditionStatus.UNKNOWN, "Verifying", text),
        events=(EventNote("FixApplied", text),),
        audits=(AuditNote("FixApplied", SYSTEM, text, {"attempt": attempt.number, "changed": outcome.get("changed")}),),
        requeue_after_seconds=poll_seconds(ctx.engine.policy),
    )


def replace_attempt(attempt: Attempt, **changes: Any) -> Attempt:
    return attempt.model_copy(update=changes)


async def verifying(ctx: Context, asg: Assignment) -> Step:
    """The drift must be gone and the target healthy for the settle period."""
    attempt = ctx.rem.status.current_attempt
    if attempt is None:
        return Step(status={"phase": RemediationPhase.PENDING.value}, requeue_after_seconds=0.5)
    limits = ctx.engine.policy.remediation
    assessment = await observe(ctx, asg)
    acted = attempt.acted_at or attempt.started_at or ctx.now
    if assessment.in_sync and assessment.healthy:
        since = attempt.healthy_since or ctx.now
        held = (ctx.now - since).total_seconds()
        if held < limits.settle_seconds:
            return Step(
                status={"currentAttempt": dump(replace_attempt(attempt, healthy_since=since))},
                requeue_after_seconds=min(poll_seconds(ctx.engine.policy), limits.settle_seconds - held),
            )
        await ctx.engine.ledger.finish_attempt(ctx.uid, attempt.number, AttemptOutcome.VERIFIED, ctx.now)
        detail = f"In sync and healthy for {int(held)}s after {attempt.action.value}"
        verification = Verification(verified=True, at=ctx.now, detail=detail)
        ctx.log("Verified: %s", detail)
        if ctx.engine.expedite is not None and asg.metadata.uid:
            ctx.engine.expedite(asg.metadata.uid)
        return Step(
            status={
                "phase": _P.SUCCEEDED.value,
                "verification": dump(verification),
                "requiresHumanReview": False,
            },
            ready=(ConditionStatus.TRUE, "Verified", detail),
            events=(EventNote("RemediationSucceeded", detail),),
            audits=(AuditNote("Verified", SYSTEM, detail, {"attempt": attempt.number}),),
        )
    what = assessment.finding.detail if assessment.finding else "not healthy yet"
    if attempt.healthy_since is not None:
        return await failed_attempt(ctx, asg, attempt, f"the drift came back while settling: {what}")
    if (ctx.now - acted).total_seconds() > limits.verify_timeout_seconds:
        return await failed_attempt(ctx, asg, attempt, f"{what}, {limits.verify_timeout_seconds}s after the fix")
    return Step(requeue_after_seconds=poll_seconds(ctx.engine.policy))


async def failed_attempt(ctx: Context, asg: Assignment, attempt: Attempt, reason: str) -> Step:
    """The attempt did not verify: back off and retry, or escalate after `maxAttempts`."""
    engine = ctx.engine
    limits = engine.policy.remediation
    await engine.ledger.finish_attempt(ctx.uid, attempt.number, AttemptOutcome.FAILED, ctx.now)
    history, reset_at = await engine.ledger.history(asg.metadata.uid or "")
    kind = ctx.rem.status.drift_type or DriftType.UNKNOWN
    count = len(counted(history, kind, reset_at))
    verification = dump(Verification(verified=False, at=ctx.now, detail=f"Attempt {attempt.number}: {reason}"[:1024]))
    if count >= limits.max_attempts:
        decision = Decision(
            Verdict.ESCALATE,
            "MaxAttempts",
            f"{kind.value} persisted after {count} attempts (maxAttempts {limits.max_attempts}): {reason}",
            kind,
            attempt.action,
        )
        return terminal(ctx, decision, {"verification": verification, "attempts": count})
    due = ctx.now + timedelta(seconds=backoff_seconds(count + 1, limits))
    text = f"Attempt {attempt.number} failed ({reason}); attempt {count + 1} after {stamp(due)}"
    ctx.log("%s", text)
    decision = Decision(Verdict.WAIT, "Backoff", text, kind, attempt.action, next_at=due)
    return Step(
        status={
            "phase": _P.PENDING.value,
            "verification": verification,
            "nextAttemptAt": stamp(due),
            "policy": policy_status(decision),
            "attempts": count,
        },
        ready=(ConditionStatus.UNKNOWN, "Backoff", text),
        events=(EventNote("AttemptFailed", text, "Warning"),),
        audits=(AuditNote("AttemptFailed", SYSTEM, text, {"attempt": attempt.number, "nextAttemptAt": stamp(due)}),),
        requeue_after_seconds=max(0.5, (due - ctx.now).total_seconds()),
    )
