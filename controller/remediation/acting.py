"""The worker's half of a fix: perform one remediation attempt through the execution plane.

The `remediation_act` actor (controller/worker/actors.py) calls `perform`. The attempt is claimed in
`step_claims` under `act_key`, so a redelivered message never acts twice; the outcome stored with
the claim is what the Remediation controller reads to move on to verification. Transient plane
errors give the claim back and raise, so dramatiq retries; permanent ones are recorded as failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.api.assignment import Assignment
from controller.api.identity import SYSTEM_USER
from controller.api.remediation import FixAction
from controller.planes.base import ActionResult, ExecutionPlane, PlaneError, TargetRef
from controller.planes.catalog import PlaneSource
from controller.remediation.classifying import target_of
from controller.remediation.cluster import Cluster
from controller.remediation.ledger import Ledger
from controller.remediation.ports import ActRequest, act_key
from controller.storage import claims
from controller.storage.audit import AuditEvent, record_audit
from controller.storage.db import Pool

logger = logging.getLogger(__name__)


def plane_key(request: ActRequest) -> str:
    """The idempotency key of the plane call: the correlation ID, then this Remediation and attempt."""
    return f"{request.correlation_id}/remediation-{request.uid[:8]}-{request.attempt}"


async def call_plane(
    plane: ExecutionPlane, action: FixAction, target: TargetRef, asg: Assignment, key: str
) -> ActionResult:
    """The plane call that performs `action`."""
    if action is FixAction.UPDATE:
        return await plane.apply(target, asg.spec.version, asg.spec.artifact, key)
    if action is FixAction.INSTALL:
        return await plane.install(target, key)
    if action is FixAction.REAPPLY_CONFIG:
        return await plane.reapply_config(target, key)
    return await plane.restart(target, key)


@dataclass
class Worker:
    """What an attempt needs; the worker process builds it from its resources (controller/worker/resources.py)."""

    cluster: Cluster
    planes: PlaneSource
    ledger: Ledger
    pool: Pool
    owner: str
    #: An unfinished claim older than this belongs to a worker that died mid-fix.
    stale_claim_seconds: float = 120.0
    #: Whether a claim's owner is known to be gone (a worker of this host that no longer runs): taken over at once.
    owner_gone: Callable[[str], bool] = lambda _owner: False


async def perform(worker: Worker, request: ActRequest) -> dict[str, Any] | None:
    """Do attempt `request.attempt` once; returns the recorded outcome (None when there was nothing to do)."""
    attempt = await worker.ledger.pending_attempt(request.uid)
    if attempt is None or attempt.number != request.attempt or attempt.action is None:
        logger.info(
            "Remediation %s/%s attempt %d is no longer pending; nothing to do (correlation %s)",
            request.namespace,
            request.name,
            request.attempt,
            request.correlation_id,
        )
        return None
    body = await worker.cluster.get_remediation(request.namespace, request.name)
    if body is None or (body.get("metadata") or {}).get("uid") != request.uid:
        logger.info(
            "Remediation %s/%s is gone (correlation %s)",
            request.namespace,
            request.name,
            request.correlation_id,
        )
        return None
    key = act_key(request.uid, request.attempt)
    if not await _claim(worker, key, request.correlation_id):
        return None
    try:
        outcome = await _act(worker, request, FixAction(attempt.action))
    except BaseException:
        await claims.release(worker.pool, key, worker.owner)
        raise
    await claims.finish(worker.pool, key, outcome)
    await record_audit(
        worker.pool,
        AuditEvent(
            correlation_id=request.correlation_id,
            actor=SYSTEM_USER,
            kind="Remediation",
            namespace=request.namespace,
            name=request.name,
            action="FixExecuted" if outcome["ok"] else "FixRefused",
            reason=outcome["detail"],
            detail={"attempt": request.attempt, "action": attempt.action, "changed": outcome.get("changed")},
        ),
    )
    return outcome


async def _claim(worker: Worker, key: str, correlation_id: str) -> bool:
    """Claim the attempt; take over a claim left unfinished by a worker that died (the plane call is keyed)."""
    if await claims.claim(worker.pool, key, correlation_id, worker.owner):
        return True
    existing = await claims.get(worker.pool, key)
    if existing is None or existing.finished:
        return False
    age_seconds = (datetime.now(UTC) - existing.claimed_at).total_seconds()
    if age_seconds < worker.stale_claim_seconds and not worker.owner_gone(existing.owner):
        return False
    logger.warning("Took over remediation step %r from %r after %.0fs", key, existing.owner, age_seconds)
    await claims.release(worker.pool, key, existing.owner)
    return await claims.claim(worker.pool, key, correlation_id, worker.owner)


async def _act(worker: Worker, request: ActRequest, action: FixAction) -> dict[str, Any]:
    raw = await worker.cluster.get_assignment(request.namespace, request.assignment)
    if raw is None:
        return {"ok": False, "detail": f"Assignment {request.assignment} is gone"}
    asg = Assignment.from_body(raw)
    target = target_of(asg.spec)
    try:
        result = await call_plane(worker.planes.get(target.plane), action, target, asg, plane_key(request))
    except PlaneError as error:
        if error.transient:
            raise
        logger.warning(
            "Remediation %s/%s: %s refused: %s (correlation %s)",
            request.namespace,
            request.name,
            action.value,
            error,
            request.correlation_id,
        )
        return {"ok": False, "detail": str(error)[:1024]}
    logger.info(
        "Remediation %s/%s: %s %s: %s (correlation %s)",
        request.namespace,
        request.name,
        action.value,
        target.key,
        result.detail,
        request.correlation_id,
    )
    return {"ok": True, "changed": result.changed, "detail": result.detail[:1024]}
