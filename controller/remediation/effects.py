"""The Remediation engine's two I/O edges: `gather` the facts a pass needs, `carry_out` what it decided.

`gather` reads only what the Remediation's phase calls for (see controller/remediation/situation.py)
and raises `Unavailable` when the plane cannot be asked now. `carry_out` writes the ledger (records
closed, the attempt started or finished, the record's phase) and then sends the act message, so a
lost status write only repeats work the ledger and the claim key make idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from pydantic import ValidationError

from controller.api.assignment import Assignment
from controller.api.remediation import FINAL_PHASES, RemediationPhase
from controller.api.semantics import check
from controller.core.errors import Unavailable
from controller.planes.base import PlaneError
from controller.remediation.backoff import stale_seconds
from controller.remediation.classifying import Assessment, classify_drift, target_of
from controller.remediation.cluster import tasks_in_flight
from controller.remediation.deciding import Decision, Verdict, screen_requester
from controller.remediation.ledger import RecordInfo
from controller.remediation.outcomes import RemediationTransitions
from controller.remediation.ports import RemediationPorts, act_key
from controller.remediation.provenance import problem
from controller.remediation.situation import OtherOpen, RemediationFacts, RemediationView

logger = logging.getLogger(__name__)


def _refused(
    now: datetime, rule: str, reason: str, record: RecordInfo | None, assignment: Assignment | None = None
) -> RemediationFacts:
    refusal = Decision(Verdict.DENY, rule, reason)
    return RemediationFacts(now=now, assignment=assignment, record=record, refusal=refusal)


async def gather(ports: RemediationPorts, view: RemediationView, now: datetime) -> RemediationFacts:
    """The facts for one pass over `view` (see the module docstring)."""
    phase = view.status.phase or RemediationPhase.PENDING
    if phase in FINAL_PHASES:
        return RemediationFacts(now=now)
    record = await ports.ledger.record_for(view.namespace, view.name)
    raw = await ports.cluster.get_assignment(view.namespace, view.spec.assignment)
    if raw is None:
        where = f"Assignment {view.spec.assignment} does not exist in {view.namespace}"
        return _refused(now, "UnknownAssignment", where, record=record)
    try:
        asg = Assignment.from_body(raw)
    except ValidationError as error:
        return _refused(now, "InvalidAssignment", f"Assignment is not valid: {error}"[:1024], record=record)
    problems = check("Assignment", asg.spec)
    if problems:
        return _refused(now, "InvalidAssignment", "; ".join(map(str, problems)), record=record, assignment=asg)
    if phase is RemediationPhase.PENDING and view.status.current_attempt is None and ports.provenance is not None:
        bad = problem(asg.spec, await ports.provenance(asg.spec))
        if bad is not None:
            rule = "RingMismatch" if bad.field == "spec.ring" else "DeployRequest"
            where = f"Assignment {asg.metadata.name}: {bad}"
            return _refused(now, rule, where[:1024], record=record, assignment=asg)
    refusal, role = screen_requester(view.spec.requested_by, record, view.uid, ports.policy)
    known = RemediationFacts(now=now, assignment=asg, record=record, refusal=refusal, role=role)
    if refusal is not None:
        return known
    current = view.status.current_attempt
    if phase in (RemediationPhase.REMEDIATING, RemediationPhase.VERIFYING):
        if current is None:
            return known
        history, reset_at = await ports.ledger.history(asg.metadata.uid or "")
        if phase is RemediationPhase.REMEDIATING:
            claim = await ports.claim(act_key(view.uid, current.number))
            return replace(known, history=history, reset_at=reset_at, claim=claim)
        return replace(known, history=history, reset_at=reset_at, assessment=await observe(ports, asg, now))
    return await _pending_facts(ports, view, asg, known)


async def _pending_facts(
    ports: RemediationPorts, view: RemediationView, asg: Assignment, known: RemediationFacts
) -> RemediationFacts:
    ledger, now = ports.ledger, known.now
    if view.status.current_attempt is None and not view.spec.dry_run:
        other = await ledger.open_for_assignment(asg.metadata.uid or "", (view.namespace, view.name))
        if other is not None:
            body = await ports.cluster.get_remediation(other.namespace, other.name)
            exists = body is not None and (body.get("metadata") or {}).get("uid") in (None, other.uid)
            known = replace(known, other_open=OtherOpen(other, exists))
            if exists:  # one open per Assignment: nothing else matters
                return known
    adopted = await ledger.pending_attempt(view.uid)
    if adopted is not None and not view.spec.dry_run:
        return replace(known, adopted=adopted)
    assessment = await observe(ports, asg, now)
    history, reset_at = await ledger.history(asg.metadata.uid or "")
    busy = tasks_in_flight(await ports.cluster.list_deployment_tasks()).get(asg.spec.app)
    limits = ports.policy.remediation
    rates = await ledger.rate_counts(asg.spec.app, asg.spec.ring, now, stale_seconds(limits))
    return replace(
        known, assessment=assessment, history=history, reset_at=reset_at, change_in_progress=busy, rates=rates
    )


async def observe(ports: RemediationPorts, asg: Assignment, now: datetime) -> Assessment:
    """Observe the Assignment's one target and classify its drift; a transient plane error is Unavailable."""
    target = target_of(asg.spec)
    try:
        found = await ports.planes.get(target.plane).observe([target])
    except PlaneError as error:
        if error.transient:
            raise Unavailable(str(error), 2.0) from error
        found = []
    grace = ports.policy.remediation.service_down_grace_seconds
    return classify_drift(asg.spec, found[0] if found else None, now, grace_seconds=grace)


async def carry_out(
    ports: RemediationPorts, view: RemediationView, t: RemediationTransitions, now: datetime
) -> RemediationTransitions:
    """Perform `t`'s effects; returns what the pass says (the rate-limited alternative if the ledger refused)."""
    ledger, limits = ports.ledger, ports.policy.remediation
    if t.act is not None and ports.enqueue is None:
        raise Unavailable("No broker to hand the fix to a worker (RINGPILOT_REDIS_URL unset)", 10.0)
    for closed in t.close:
        await ledger.save_record(closed)
    if t.start is not None and await ledger.start_attempt(t.start, limits, now, stale_seconds(limits)) is None:
        assert t.if_limited is not None
        t = t.if_limited
    if t.finish is not None:
        number, outcome = t.finish
        await ledger.finish_attempt(view.uid, number, outcome, now)
    if t.record is not None:
        await ledger.save_record(t.record)
    if t.act is not None and ports.enqueue is not None:
        ports.enqueue(t.act)
    if t.expedite is not None and ports.expedite is not None:
        ports.expedite(t.expedite)
    for line in t.logs:
        logger.info("Remediation %s/%s: %s (correlation %s)", view.namespace, view.name, line, view.correlation_id)
    return t
