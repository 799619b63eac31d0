"""The Remediation state machine: `next_step(view, facts, policy)` picks what happens next.

Pure: the Remediation as read and the facts `effects.gather` observed in, one
`RemediationTransitions` out. Pending: classify (when spec.driftType is unset) and decide by policy
(`deciding.decide`) -> act (an attempt in the ledger, a message to a worker) -> Remediating: await the
worker's outcome -> Verifying: the drift must be gone and the target healthy for `settleSeconds` ->
Succeeded. A failed attempt backs off and retries up to `maxAttempts`, then escalates. Every
transition says so in an audit row and an Event; the ledger record follows the phase.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from controller.api.assignment import Assignment
from controller.api.policy import Policy
from controller.api.remediation import FINAL_PHASES, FixAction, RemediationPhase
from controller.api.semantics import FIX_FOR_DRIFT
from controller.core.writelag import STATUS_WRITE_LAG_SECONDS
from controller.remediation.backoff import AttemptOutcome, AttemptRecord, counted
from controller.remediation.deciding import Decision, Facts, Verdict, decide
from controller.remediation.ledger import NewAttempt, RecordInfo
from controller.remediation.outcomes import (
    TERMINAL,
    RemediationTransitions,
    deny,
    nothing_to_do,
    planned,
    started,
    terminal,
    waiting,
    waiting_for,
)
from controller.remediation.situation import RemediationFacts, RemediationView
from controller.remediation.verifying import await_fix, verify_fix


def next_step(view: RemediationView, facts: RemediationFacts, policy: Policy) -> RemediationTransitions:
    """Decide the next step of one Remediation (see the module docstring); never performs I/O."""
    phase = view.status.phase or RemediationPhase.PENDING
    if phase in FINAL_PHASES:
        return RemediationTransitions(status=view.status, idle=True)
    asg = facts.assignment
    limits = policy.remediation
    if facts.refusal is not None or asg is None:
        assert facts.refusal is not None, "gather names why there is no Assignment"
        t = deny(view, facts.refusal)
    elif phase in (RemediationPhase.REMEDIATING, RemediationPhase.VERIFYING):
        lag = status_lag(view, facts)
        if lag is not None and (facts.now - lag[0]).total_seconds() < STATUS_WRITE_LAG_SECONDS:
            return waiting_for(view.status, 0.5)  # the status an earlier pass wrote is on its way
        fix = await_fix if phase is RemediationPhase.REMEDIATING else verify_fix
        t = fix(view, asg, facts, limits)
        if lag is not None:
            t = _repaired(t, lag[1])
    else:
        t = pending(view, asg, facts, policy)
    return _recorded(view, asg, facts, t)


def closed_attempt(view: RemediationView, facts: RemediationFacts) -> AttemptRecord | None:
    """The ledger's row of the status's current attempt when the ledger has already closed it."""
    attempt = view.status.current_attempt
    if attempt is None:
        return None
    return next(
        (
            a
            for a in facts.history
            if a.remediation_uid == view.uid and a.number == attempt.number and a.outcome is not AttemptOutcome.PENDING
        ),
        None,
    )


def status_lag(view: RemediationView, facts: RemediationFacts) -> tuple[datetime, str] | None:
    """(since when, what) when the ledger shows this pass's transition was already taken by an earlier one.

    The attempt is closed in the ledger while the status still acts on it, or the ledger record is
    Verifying while the status still awaits the worker's (finished) claim.
    """
    closed = closed_attempt(view, facts)
    if closed is not None:
        return closed.finished_at or facts.now, f"attempt {closed.number} is {closed.outcome.value}"
    claim = facts.claim
    record = facts.record
    moved_on = record is not None and record.phase == RemediationPhase.VERIFYING.value
    if view.status.phase is RemediationPhase.REMEDIATING and moved_on and claim is not None and claim.finished:
        return claim.finished_at or facts.now, "the fix is being verified"
    return None


def _repaired(t: RemediationTransitions, what: str) -> RemediationTransitions:
    """A status write an earlier pass made was lost: write it again without saying it all again."""
    return replace(t, events=(), audits=(), logs=(f"the status lags the ledger ({what}); writing it again",))


def pending(view: RemediationView, asg: Assignment, facts: RemediationFacts, policy: Policy) -> RemediationTransitions:
    """Classify, decide by policy, and start an attempt when policy lets Ringpilot act."""
    spec, st, now = view.spec, view.status, facts.now
    limits = policy.remediation
    close: tuple[RecordInfo, ...] = ()
    other = facts.other_open
    if other is not None and other.exists:
        rule = "AlreadyOpen"
        return deny(
            view,
            Decision(
                Verdict.DENY,
                rule,
                f"Remediation {other.record.name} is already open for Assignment {asg.metadata.name}",
            ),
        )
    if other is not None:  # gone without closing: no longer blocks
        close = (replace(other.record, phase="Deleted", closed_at=now),)
    adopted = facts.adopted
    if adopted is not None and not spec.dry_run:
        # The attempt resumes with the fix it was started with (the ledger's record), not a default.
        action = FixAction(adopted.action) if adopted.action else (st.action or FIX_FOR_DRIFT[adopted.drift_type])
        resumed = Decision(Verdict.ACT, "Autonomous", "resumed", adopted.drift_type, action)
        return replace(started(view, asg, adopted.number, resumed, limits, now), close=close)
    assert facts.assessment is not None, "gather observes the target of a Pending Remediation"
    finding = facts.assessment.finding
    kind = finding.type if finding else (spec.drift_type or st.drift_type)
    attempts = counted(facts.history, kind, facts.reset_at) if kind else []
    decision = decide(
        Facts(
            app=asg.spec.app,
            ring=asg.spec.ring,
            finding=finding,
            now=now,
            requester=spec.requested_by,
            dry_run=spec.dry_run,
            requested_action=spec.action,
            expected_drift=spec.drift_type or st.drift_type,
            first_pass=st.current_attempt is None,
            attempts=attempts,
            history=facts.history,
            interval_seconds=limits.check_interval_for(asg.spec.criticality.value),
            change_in_progress=facts.change_in_progress,
            rates=facts.rates,
        ),
        policy,
    )
    described = {
        "drift_detail": (finding.detail if finding else "no drift observed")[:1024],
        "attempts": len(attempts),
        "requester_role": facts.role.value if facts.role else None,
    }
    if decision.verdict in TERMINAL:
        t = terminal(view, decision, **described)
    elif decision.verdict is Verdict.PLAN:
        t = planned(view, decision, **described)
    elif decision.verdict is Verdict.DONE:
        t = nothing_to_do(view, decision, now, **described)
    elif decision.verdict is Verdict.WAIT:
        t = waiting(view, decision, limits, now, **described)
    else:
        t = _act(view, asg, decision, len(attempts) + 1, policy, facts, described)
    return replace(t, close=close)


def _act(
    view: RemediationView,
    asg: Assignment,
    decision: Decision,
    number: int,
    policy: Policy,
    facts: RemediationFacts,
    described: dict[str, object],
) -> RemediationTransitions:
    """Start attempt `number`; the ledger checks the limits again atomically when it inserts it."""
    assert decision.drift_type is not None and decision.action is not None
    limits = policy.remediation
    attempt = NewAttempt(
        assignment_uid=asg.metadata.uid or "",
        drift_type=decision.drift_type,
        number=number,
        remediation_uid=view.uid,
        remediation=view.name,
        app=asg.spec.app,
        ring=asg.spec.ring,
        action=decision.action.value,
    )
    limited = Decision(
        Verdict.WAIT, "RateLimited", "concurrency or hourly limit reached", decision.drift_type, decision.action
    )
    return replace(
        started(view, asg, number, decision, limits, facts.now, **described),
        start=attempt,
        if_limited=waiting(view, limited, limits, facts.now, **described),
    )


def _recorded(
    view: RemediationView, asg: Assignment | None, facts: RemediationFacts, t: RemediationTransitions
) -> RemediationTransitions:
    """Keep the ledger's record of this Remediation in step with the phase `t` enters."""
    old = facts.record
    phase = t.phase
    now = facts.now
    drift = t.status.drift_type.value if t.status.drift_type else None
    record = RecordInfo(
        namespace=view.namespace,
        name=view.name,
        correlation_id=view.correlation_id,
        opened_at=old.opened_at if old else now,
        phase=phase.value,
        uid=view.stored_uid,
        assignment_uid=(asg.metadata.uid if asg else None) or (old.assignment_uid if old else None),
        drift_type=drift or (old.drift_type if old else None),
        opened_by_loop=bool(old and old.opened_by_loop),
        dry_run=view.spec.dry_run,
        closed_at=(old.closed_at if old and old.closed_at else now) if phase in FINAL_PHASES else None,
    )
    limited = t.if_limited
    if limited is not None:
        limited = _recorded(view, asg, facts, limited)
    return replace(t, record=record if record != old else None, if_limited=limited)
