"""The Remediation controller: the seed's AutonomousRemediator as a level-based state machine.

Pending: classify (when spec.driftType is unset) and decide by policy (`deciding.decide`) -> act
(hand the fix to a worker, claimed by key) -> Remediating: wait for the worker's outcome ->
Verifying: the drift must be gone and the target healthy for `settleSeconds` -> Succeeded. A failed
attempt backs off and retries up to `maxAttempts`, then escalates. Every transition writes an audit
row and an Event and is logged with the correlation ID; the status is the only state kept.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from pydantic import ValidationError

from controller.api.assignment import Assignment
from controller.api.policy import Permission, Role, may
from controller.api.remediation import (
    FINAL_PHASES,
    SYSTEM_USER,
    FixAction,
    Remediation,
    RemediationPhase,
)
from controller.api.semantics import check
from controller.remediation.backoff import counted
from controller.remediation.cluster import tasks_in_flight
from controller.remediation.deciding import Decision, Facts, Verdict, decide
from controller.remediation.ledger import NewAttempt, RecordInfo
from controller.remediation.stepping import Engine, Step, stale_seconds
from controller.remediation.transitions import (
    TERMINAL,
    Context,
    deny,
    nothing_to_do,
    planned,
    started,
    terminal,
    waiting,
)
from controller.remediation.verifying import observe, remediating, verifying

logger = logging.getLogger(__name__)

SYSTEM = SYSTEM_USER
_P = RemediationPhase


async def run(engine: Engine, rem: Remediation, correlation_id: str, now: datetime) -> Step:
    """One reconcile pass; see the module docstring."""
    ctx = Context(engine, rem, correlation_id, now)
    phase = rem.status.phase or _P.PENDING
    if phase in FINAL_PHASES:
        return Step()
    raw = await engine.cluster.get_assignment(ctx.namespace, rem.spec.assignment)
    if raw is None:
        return await _recorded(
            ctx,
            None,
            deny(
                ctx,
                "UnknownAssignment",
                f"Assignment {rem.spec.assignment} does not exist in {ctx.namespace}",
            ),
        )
    try:
        asg = Assignment.from_body(raw)
    except ValidationError as error:
        return await _recorded(ctx, None, deny(ctx, "InvalidAssignment", f"Assignment is not valid: {error}"[:1024]))
    problems = check("Assignment", asg.spec)
    if problems:
        return await _recorded(ctx, asg, deny(ctx, "InvalidAssignment", "; ".join(map(str, problems))))
    role: Role | None = None
    if rem.spec.requested_by == SYSTEM:
        record = await engine.ledger.record_for(ctx.namespace, ctx.name)
        if record is None or not record.opened_by_loop or record.uid not in (None, ctx.uid):
            return await _recorded(
                ctx,
                asg,
                deny(
                    ctx,
                    "ReservedRequester",
                    f"requestedBy {SYSTEM} is reserved for Remediations the drift loop opens; name yourself",
                ),
            )
    else:
        role = engine.policy.role_for(rem.spec.requested_by)
        if not may(role, Permission.REMEDIATE):
            return await _recorded(
                ctx,
                asg,
                deny(
                    ctx,
                    "RequesterLacksPermission",
                    f"{rem.spec.requested_by} is {role.value}; remediation needs the operator or admin role",
                ),
            )
    if phase is _P.REMEDIATING:
        step = await remediating(ctx, asg)
    elif phase is _P.VERIFYING:
        step = await verifying(ctx, asg)
    else:
        step = await pending(ctx, asg, role)
    return await _recorded(ctx, asg, step)


async def _recorded(ctx: Context, asg: Assignment | None, step: Step) -> Step:
    """Keep the ledger's record of this Remediation in step with its phase."""
    ledger = ctx.engine.ledger
    old = await ledger.record_for(ctx.namespace, ctx.name)
    phase = step.phase or ctx.rem.status.phase or _P.PENDING
    record = RecordInfo(
        namespace=ctx.namespace,
        name=ctx.name,
        correlation_id=ctx.correlation_id,
        opened_at=old.opened_at if old else ctx.now,
        phase=phase.value,
        uid=ctx.rem.metadata.uid,
        assignment_uid=(asg.metadata.uid if asg else None) or (old.assignment_uid if old else None),
        drift_type=step.status.get("driftType") or (old.drift_type if old else None),
        opened_by_loop=bool(old and old.opened_by_loop),
        dry_run=ctx.rem.spec.dry_run,
        closed_at=(old.closed_at if old and old.closed_at else ctx.now) if phase in FINAL_PHASES else None,
    )
    if record != old:
        await ledger.save_record(record)
    return step


async def _other_open(ctx: Context, asg: Assignment) -> str | None:
    """Another Remediation of the same Assignment that is still open (one at a time)."""
    other = await ctx.engine.ledger.open_for_assignment(asg.metadata.uid or "", (ctx.namespace, ctx.name))
    if other is None:
        return None
    body = await ctx.engine.cluster.get_remediation(other.namespace, other.name)
    if body is None or (body.get("metadata") or {}).get("uid") not in (None, other.uid):
        await ctx.engine.ledger.save_record(replace(other, phase="Deleted", closed_at=ctx.now))
        return None
    return other.name


async def pending(ctx: Context, asg: Assignment, role: Role | None) -> Step:
    engine, rem, st = ctx.engine, ctx.rem, ctx.rem.status
    first_pass = st.current_attempt is None
    if first_pass and not rem.spec.dry_run and (other := await _other_open(ctx, asg)):
        return deny(ctx, "AlreadyOpen", f"Remediation {other} is already open for Assignment {asg.metadata.name}")
    adopted = await engine.ledger.pending_attempt(ctx.uid)
    if adopted is not None and not rem.spec.dry_run:
        action = st.action or FixAction.UPDATE
        return started(ctx, asg, adopted, Decision(Verdict.ACT, "Autonomous", "resumed", adopted.drift_type, action))
    assessment = await observe(ctx, asg)
    finding = assessment.finding
    history, reset_at = await engine.ledger.history(asg.metadata.uid or "")
    kind = finding.type if finding else (rem.spec.drift_type or st.drift_type)
    attempts = counted(history, kind, reset_at) if kind else []
    limits = engine.policy.remediation
    facts = Facts(
        app=asg.spec.app,
        ring=asg.spec.ring,
        finding=finding,
        now=ctx.now,
        requester=rem.spec.requested_by,
        role=role,
        dry_run=rem.spec.dry_run,
        requested_action=rem.spec.action,
        expected_drift=rem.spec.drift_type or st.drift_type,
        first_pass=first_pass,
        attempts=attempts,
        history=history,
        interval_seconds=limits.check_interval_for(asg.spec.criticality.value),
        change_in_progress=tasks_in_flight(await engine.cluster.list_deployment_tasks()).get(asg.spec.app),
        rates=await engine.ledger.rate_counts(asg.spec.app, asg.spec.ring, ctx.now, stale_seconds(engine.policy)),
    )
    decision = decide(facts, engine.policy)
    described = {
        "driftDetail": (finding.detail if finding else "no drift observed")[:1024],
        "attempts": len(attempts),
        "requesterRole": role.value if role else None,
    }
    if decision.verdict in TERMINAL:
        return terminal(ctx, decision, described)
    if decision.verdict is Verdict.PLAN:
        return planned(ctx, decision, described)
    if decision.verdict is Verdict.DONE:
        return nothing_to_do(ctx, decision, described)
    if decision.verdict is Verdict.WAIT:
        return waiting(ctx, decision, described)
    assert decision.drift_type is not None
    assert decision.action is not None
    attempt = NewAttempt(
        assignment_uid=asg.metadata.uid or "",
        drift_type=decision.drift_type,
        number=len(attempts) + 1,
        remediation_uid=ctx.uid,
        remediation=ctx.name,
        app=asg.spec.app,
        ring=asg.spec.ring,
        action=decision.action.value,
    )
    record = await engine.ledger.start_attempt(attempt, limits, ctx.now, stale_seconds(engine.policy))
    if record is None:
        return waiting(
            ctx,
            Decision(
                Verdict.WAIT,
                "RateLimited",
                "concurrency or hourly limit reached",
                decision.drift_type,
                decision.action,
            ),
            described,
        )
    return started(ctx, asg, record, decision, described)
