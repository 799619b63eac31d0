"""The Remediation machine after the fix was handed over: await the worker, then verify the fix.

Pure. Remediating (`await_fix`): the worker's outcome is read from its step claim (`act_key`); a
refused fix is Failed; a fix with no outcome within its lease (a lost message, one a worker held when
it died, or one whose worker died mid-fix) is sent again. Verifying (`verify_fix`): the drift must be
gone and the target healthy (rolled out, available) for the settle period. A fix that does not verify
backs off and is retried, then escalates after `maxAttempts`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from controller.api.assignment import Assignment, DriftType
from controller.api.identity import SYSTEM_USER
from controller.api.meta import ConditionStatus
from controller.api.policy import RemediationLimits
from controller.api.remediation import Attempt, RemediationPhase, Verification
from controller.core.outcome import AuditNote, EventNote
from controller.remediation.backoff import AttemptOutcome, act_lease_seconds, backoff_seconds, counted, poll_seconds
from controller.remediation.deciding import Decision, Verdict
from controller.remediation.detecting import stamp
from controller.remediation.outcomes import RemediationTransitions, policy_status, terminal, waiting_for
from controller.remediation.ports import ActRequest
from controller.remediation.situation import RemediationFacts, RemediationView


def await_fix(
    view: RemediationView, asg: Assignment, facts: RemediationFacts, limits: RemediationLimits
) -> RemediationTransitions:
    """Wait for the worker's outcome of the current attempt."""
    attempt = view.status.current_attempt
    now = facts.now
    if attempt is None:
        return waiting_for(view.status.model_copy(update={"phase": RemediationPhase.PENDING}), 0.5)
    claim = facts.claim
    if claim is None or not claim.finished:
        started_at = attempt.started_at or now
        if now - started_at > timedelta(seconds=limits.timeout_seconds):
            return failed_attempt(view, asg, facts, limits, f"the fix did not finish within {limits.timeout_seconds}s")
        # lease from the last hand-over, or from the claim: a worker killed mid-fix leaves its claim unfinished,
        # and its message may come back only after the broker's heartbeat timeout
        since = max(attempt.resent_at or started_at, claim.claimed_at if claim is not None else started_at)
        if now - since >= timedelta(seconds=act_lease_seconds(limits)):
            return handed_over_again(view, asg, attempt, now, limits, claimed=claim is not None)
        return waiting_for(view.status, poll_seconds(limits))
    outcome = claim.outcome or {}
    detail = str(outcome.get("detail", ""))[:1024]
    acted = attempt.model_copy(update={"acted_at": claim.finished_at or now, "result": detail})
    if not outcome.get("ok"):
        text = f"{attempt.action.value} failed: {detail}"
        status = view.status.model_copy(
            update={"phase": RemediationPhase.FAILED, "current_attempt": acted, "requires_human_review": True}
        )
        return RemediationTransitions(
            status=status,
            ready=(ConditionStatus.FALSE, "FixFailed", text),
            events=(EventNote("FixFailed", text, "Warning"),),
            audits=(AuditNote("FixFailed", SYSTEM_USER, text, {"attempt": attempt.number}),),
            logs=(text,),
            finish=(attempt.number, AttemptOutcome.FAILED),
        )
    settle = limits.settle_seconds
    text = f"{attempt.action.value} applied ({detail}); verifying for {settle}s"
    detail_row = {"attempt": attempt.number, "changed": outcome.get("changed")}
    return RemediationTransitions(
        status=view.status.model_copy(update={"phase": RemediationPhase.VERIFYING, "current_attempt": acted}),
        ready=(ConditionStatus.UNKNOWN, "Verifying", text),
        events=(EventNote("FixApplied", text),),
        audits=(AuditNote("FixApplied", SYSTEM_USER, text, detail_row),),
        requeue_after_seconds=poll_seconds(limits),
        logs=(text,),
    )


def handed_over_again(
    view: RemediationView,
    asg: Assignment,
    attempt: Attempt,
    now: datetime,
    limits: RemediationLimits,
    *,
    claimed: bool = False,
) -> RemediationTransitions:
    """The fix has no outcome within its lease: send the same message again (its key makes it harmless).

    Unclaimed, the message was lost. Claimed, its worker may have died holding it: a worker that gets the
    message again takes the claim over when its owner is known gone (or the claim is stale), else drops it.
    """
    lease = act_lease_seconds(limits)
    if claimed:
        text = f"Attempt {attempt.number} has had no outcome {lease:.0f}s after a worker took it up; sent it again"
    else:
        text = f"No worker took up attempt {attempt.number} within {lease:.0f}s; sent it again"
    status = view.status.model_copy(update={"current_attempt": attempt.model_copy(update={"resent_at": now})})
    request = ActRequest(view.namespace, view.name, view.uid, attempt.number, view.correlation_id, asg.metadata.name)
    return RemediationTransitions(
        status=status,
        events=(EventNote("WorkerUnavailable", text, "Warning"),),
        audits=(AuditNote("FixResent", SYSTEM_USER, text, {"attempt": attempt.number}),),
        requeue_after_seconds=poll_seconds(limits),
        logs=(text,),
        act=request,
    )


def verify_fix(
    view: RemediationView, asg: Assignment, facts: RemediationFacts, limits: RemediationLimits
) -> RemediationTransitions:
    """The drift must be gone and the target healthy for the settle period."""
    attempt = view.status.current_attempt
    now = facts.now
    if attempt is None:
        return waiting_for(view.status.model_copy(update={"phase": RemediationPhase.PENDING}), 0.5)
    assessment = facts.assessment
    assert assessment is not None, "gather observes the target of a Verifying Remediation"
    acted = attempt.acted_at or attempt.started_at or now
    if assessment.in_sync and assessment.healthy:
        since = attempt.healthy_since or now
        held = (now - since).total_seconds()
        if held < limits.settle_seconds:
            status = view.status.model_copy(update={"current_attempt": _settling(attempt, since)})
            return waiting_for(status, min(poll_seconds(limits), limits.settle_seconds - held))
        detail = f"In sync and healthy for {int(held)}s after {attempt.action.value}"
        status = view.status.model_copy(
            update={
                "phase": RemediationPhase.SUCCEEDED,
                "verification": Verification(verified=True, at=now, detail=detail),
                "requires_human_review": False,
            }
        )
        return RemediationTransitions(
            status=status,
            ready=(ConditionStatus.TRUE, "Verified", detail),
            events=(EventNote("RemediationSucceeded", detail),),
            audits=(AuditNote("Verified", SYSTEM_USER, detail, {"attempt": attempt.number}),),
            logs=(f"Verified: {detail}",),
            finish=(attempt.number, AttemptOutcome.VERIFIED),
            expedite=asg.metadata.uid or None,
        )
    what = assessment.finding.detail if assessment.finding else "not healthy yet"
    if attempt.healthy_since is not None:
        return failed_attempt(view, asg, facts, limits, f"the drift came back while settling: {what}")
    if (now - acted).total_seconds() > limits.verify_timeout_seconds:
        return failed_attempt(view, asg, facts, limits, f"{what}, {limits.verify_timeout_seconds}s after the fix")
    return waiting_for(view.status, poll_seconds(limits))


def _settling(attempt: Attempt, since: datetime) -> Attempt:
    return attempt.model_copy(update={"healthy_since": since})


def failed_attempt(
    view: RemediationView, asg: Assignment, facts: RemediationFacts, limits: RemediationLimits, reason: str
) -> RemediationTransitions:
    """The attempt did not verify: back off and retry, or escalate after `maxAttempts`.

    The history holds this attempt still pending; `counted` counts it all the same.
    """
    attempt = view.status.current_attempt
    assert attempt is not None
    now = facts.now
    kind = view.status.drift_type or DriftType.UNKNOWN
    count = len(counted(facts.history, kind, facts.reset_at))
    verification = Verification(verified=False, at=now, detail=f"Attempt {attempt.number}: {reason}"[:1024])
    finish = (attempt.number, AttemptOutcome.FAILED)
    if count >= limits.max_attempts:
        decision = Decision(
            Verdict.ESCALATE,
            "MaxAttempts",
            f"{kind.value} persisted after {count} attempts (maxAttempts {limits.max_attempts}): {reason}",
            kind,
            attempt.action,
        )
        escalated = terminal(view, decision, verification=verification, attempts=count)
        return replace(escalated, finish=finish)
    due = now + timedelta(seconds=backoff_seconds(count + 1, limits))
    text = f"Attempt {attempt.number} failed ({reason}); attempt {count + 1} after {stamp(due)}"
    decision = Decision(Verdict.WAIT, "Backoff", text, kind, attempt.action, next_at=due)
    status = view.status.model_copy(
        update={
            "phase": RemediationPhase.PENDING,
            "verification": verification,
            "next_attempt_at": due,
            "policy": policy_status(decision),
            "attempts": count,
        }
    )
    detail = {"attempt": attempt.number, "nextAttemptAt": stamp(due)}
    return RemediationTransitions(
        status=status,
        ready=(ConditionStatus.UNKNOWN, "Backoff", text),
        events=(EventNote("AttemptFailed", text, "Warning"),),
        audits=(AuditNote("AttemptFailed", SYSTEM_USER, text, detail),),
        requeue_after_seconds=max(0.5, (due - now).total_seconds()),
        logs=(text,),
        finish=finish,
    )
