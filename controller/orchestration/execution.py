"""The worker's half of a DeploymentTask: the bodies of the four slow steps.

Each actor in controller/worker/actors.py calls `execute` with one of `generate_evidence`, `deploy_ring`,
`poll_ring` or `rollback_ring`. `execute` claims the step's key in `step_claims` first and exits
quietly when another delivery holds it, then runs the body and finishes the claim with the step's
report (controller/orchestration/steps.py) or a `StepFailure` saying whether a retry may help, then
wakes the controller with a PostgreSQL NOTIFY naming the task (`announce`); the reconcile reads the
report back at once. The ring-wide plane calls carry the step's key without its attempt, so a
replacement attempt never acts twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from controller.api.deploymenttask import DeploymentTask, PlaneName, PlanRecord
from controller.api.identity import SYSTEM_USER
from controller.api.kinds import DEPLOYMENT_TASK
from controller.api.policy import Policy
from controller.kube.client import ApiClient, ApiException, CustomObjects
from controller.orchestration import evidencestore, history
from controller.orchestration import risk as riskmodel
from controller.orchestration.assigning import MAX_ASSIGNMENTS_PER_RING, write_assignments
from controller.orchestration.declaring import declared_risk
from controller.orchestration.evidence import TargetState, build_pack, plan_digest
from controller.orchestration.history import TaskRef
from controller.orchestration.steps import (
    DeployReport,
    EvidenceReport,
    PollReport,
    RollbackReport,
    StepFailure,
    StepReport,
)
from controller.planes.base import ActionResult, ExecutionPlane, PlaneError, RingResult, TargetRef
from controller.planes.catalog import PlaneSource
from controller.storage import claims
from controller.storage.audit import AuditEvent, record_audit
from controller.storage.db import Pool

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepContext:
    """What a step body needs: PostgreSQL, the Kubernetes API, the planes, the policy, who we are."""

    pool: Pool
    api_client: ApiClient
    planes: PlaneSource
    policy: Policy
    owner: str


@dataclass(frozen=True)
class StepRequest:
    """The message's keyword arguments (ids and small scalars only)."""

    namespace: str
    name: str
    uid: str
    key: str
    step_key: str
    correlation_id: str
    ring: int | None = None
    app: str = ""
    version: str = ""
    artifact: str | None = None
    plane: str = "kubernetes"
    plan_digest: str = ""
    scope: str = "task"

    @property
    def who(self) -> TaskRef:
        return TaskRef(self.correlation_id, f"{self.namespace}/{self.name}", self.uid)

    @property
    def ring_number(self) -> int:
        if self.ring is None:
            raise PlaneError(f"Step {self.key!r} needs a ring", transient=False)
        return self.ring


Body = Callable[[StepContext, StepRequest], Awaitable[StepReport]]


def classify_step_error(error: BaseException) -> tuple[bool, str]:
    """(transient, message) for a failed step body."""
    if isinstance(error, PlaneError):
        return error.transient, str(error)
    if isinstance(error, ApiException):
        status = int(error.status or 0)
        return status == 0 or status >= 500 or status in (
            408,
            429,
        ), f"Kubernetes API {status}: {error.reason}"
    if isinstance(error, psycopg.OperationalError | OSError | TimeoutError):
        return True, f"{type(error).__name__}: {error}"
    return False, f"{type(error).__name__}: {error}"


async def execute(ctx: StepContext, request: StepRequest, body: Body, step: str) -> dict[str, Any] | None:
    """Claim, run, finish; the stored report, or None when another delivery already holds the key."""
    if not await claims.claim(ctx.pool, request.key, request.correlation_id, ctx.owner):
        logger.info("Step %r is already claimed; this delivery does nothing", request.key)
        return None
    finished: StepReport | StepFailure
    try:
        finished = await body(ctx, request)
    except Exception as error:
        transient, message = classify_step_error(error)
        logger.warning("Step %r failed (%s): %s", request.key, "transient" if transient else "permanent", message)
        finished = StepFailure(transient=transient, error=message[:1024])
    report = finished.model_copy(update={"at": datetime.now(UTC)}).model_dump(mode="json")
    await claims.finish(ctx.pool, request.key, report)
    if step != "Monitor":
        await record_audit(
            ctx.pool,
            AuditEvent(
                correlation_id=request.correlation_id,
                actor=SYSTEM_USER,
                kind=DEPLOYMENT_TASK.kind,
                namespace=request.namespace,
                name=request.name,
                action="StepFinished" if report["ok"] else "StepFailed",
                reason=f"{step}{'' if request.ring is None else f' of ring {request.ring}'}: "
                + ("done" if report["ok"] else str(report["error"])),
                detail={"key": request.key, **{k: v for k, v in report.items() if k != "error"}},
            ),
        )
    await announce(ctx, request)
    return report


async def announce(ctx: StepContext, request: StepRequest) -> None:
    """Wake the controller for the task: a NOTIFY naming its uid (storage/claims.py `announce`).

    Best effort: the report is stored already, and a task the controller is not woken for is
    reconciled when the step's lease runs out. No API write: the task's watch carries no event for it.
    """
    try:
        await claims.announce(ctx.pool, request.uid)
    except (psycopg.Error, OSError) as error:
        logger.warning("Could not announce step %r on %s: %s", request.key, request.name, error)


async def _read_task(ctx: StepContext, request: StepRequest) -> DeploymentTask:
    task = await CustomObjects(ctx.api_client).get(DeploymentTask, request.namespace, request.name)
    if task.metadata.uid and task.metadata.uid != request.uid:
        raise PlaneError(f"DeploymentTask {request.name} was re-created; this step is stale", transient=False)
    return task


async def generate_evidence(ctx: StepContext, request: StepRequest) -> EvidenceReport:
    """Snapshot the targets of every ring in scope, build the pack, store it immutably.

    The plan is recomputed here from the spec, the step's identity and the policy (the status carrying
    it may not be written yet when this message arrives). The reconcile computed it too, in
    `machine._validate`: a different digest here means the plan changed in between.
    """
    task = await _read_task(ctx, request)
    spec = task.spec.model_copy(
        update={
            "app": request.app or task.spec.app,
            "version": request.version or task.spec.version,
            "artifact": request.artifact,
            "plane": PlaneName(request.plane),
        }
    )
    declared = declared_risk(spec, task.metadata.annotations, ctx.policy)
    spec = spec.model_copy(update={"risk": declared.inputs})
    assessment = riskmodel.assess(spec.risk, spec.max_ring, spec.app, ctx.policy, spec.artifact)
    digest = plan_digest(spec, assessment, ctx.policy, declared.declared_by)
    if digest != request.plan_digest:
        raise PlaneError(
            f"The plan changed before its evidence was built ({digest[:12]} here, "
            f"{request.plan_digest[:12]} asked for: a new spec or a different policy file)",
            transient=False,
        )
    plane = ctx.planes.get(spec.plane.value)
    states: list[TargetState] = []
    for ring in range(spec.max_ring + 1):
        targets = await plane.targets(spec.app, ring)
        for o in await plane.observe(targets) if targets else []:
            states.append(TargetState(ring, o.target.key, o.version, o.image, o.available, o.present))
    plan = PlanRecord(
        digest=digest,
        generation=task.metadata.generation,
        app=spec.app,
        version=spec.version,
        artifact=spec.artifact,
        action=spec.action,
        plane=spec.plane,
        max_ring=spec.max_ring,
        targets=[sum(1 for s in states if s.ring == r) for r in range(spec.max_ring + 1)],
        submitter=spec.requested_by or "system:unattributed",
    )
    pack_id = evidencestore.pack_id_for(f"{request.step_key}/{request.plan_digest}")
    body = build_pack(
        pack_id=pack_id,
        created_at=datetime.now(UTC),
        correlation_id=request.correlation_id,
        task={
            "namespace": request.namespace,
            "name": request.name,
            "uid": request.uid,
            "generation": task.metadata.generation,
        },
        spec=spec,
        plan=plan,
        risk=assessment,
        declared_by=declared.declared_by,
        policy=ctx.policy,
        states=states,
    )
    digest = await evidencestore.store(ctx.pool, pack_id, request.correlation_id, request.who.task, body)
    return EvidenceReport(id=pack_id, sha256=digest)


async def deploy_ring(ctx: StepContext, request: StepRequest) -> DeployReport:
    """Run the version on every target of the ring, record what changed, write the Assignments."""
    plane = ctx.planes.get(request.plane)
    result = await plane.apply_ring(
        request.app, request.ring_number, request.version, request.step_key, request.artifact
    )

    def versions(action: ActionResult | None) -> tuple[str | None, str | None]:
        return (action.previous_version if action is not None else None), request.version

    await history.record(
        ctx.pool, history.rows_for(request.who, request.plane, result, "deploy", request.step_key, versions)
    )
    refs = await _touched(plane, result)
    observations = await plane.observe(refs) if refs else []
    written = await write_assignments(
        ctx.api_client,
        request.namespace,
        request.correlation_id,
        refs,
        observations,
        version=request.version,
        artifact=request.artifact,
    )
    return DeployReport(targets=result.targets, changed=result.changed, assignments=written)


async def poll_ring(ctx: StepContext, request: StepRequest) -> PollReport:
    """One health poll of the ring for the version being rolled out."""
    health = await ctx.planes.get(request.plane).health(request.app, request.ring_number, request.version)
    return PollReport(targets=health.targets, updated=health.updated, healthy=health.healthy, failed=health.failed)


async def rollback_ring(ctx: StepContext, request: StepRequest) -> RollbackReport:
    """Restore the previous version on what this task changed (scope task) or on what runs the version."""
    ring = request.ring_number
    plane = ctx.planes.get(request.plane)
    if request.scope == "task":
        rows = await history.changed_by_task(ctx.pool, request.correlation_id, request.uid, ring)
    else:
        rows = await history.deployed_version(ctx.pool, request.app, request.plane, request.version, [ring])
    if not rows:
        return RollbackReport(targets=0, changed=0, assignments=0)
    by_target = {row.target: row for row in rows}
    # A whole-ring row (a ring the plane changed at once) is undone at once; otherwise target by target.
    targets = None if any(row.whole_ring for row in rows) else [row.target_ref() for row in rows]
    result = await plane.rollback_ring(request.app, ring, request.step_key, targets)

    def versions(action: ActionResult | None) -> tuple[str | None, str | None]:
        if action is None:
            return request.version, None
        undone = by_target[action.target.key]
        return undone.to_version, undone.from_version

    await history.record(
        ctx.pool, history.rows_for(request.who, request.plane, result, "rollback", request.step_key, versions)
    )
    written = await _reassign(ctx, request, plane, await _touched(plane, result))
    return RollbackReport(targets=result.targets, changed=result.changed, assignments=written)


async def _touched(plane: ExecutionPlane, result: RingResult) -> list[TargetRef]:
    """The targets a ring-wide call acted on, to mirror as Assignments (a whole ring only while it is small)."""
    if not result.whole_ring:
        return [action.target for action in result.actions]
    if result.targets > MAX_ASSIGNMENTS_PER_RING:
        return []
    return await plane.targets(result.app, result.ring)


async def _reassign(ctx: StepContext, request: StepRequest, plane: ExecutionPlane, refs: list[TargetRef]) -> int:
    """Point the rolled-back targets' Assignments at the version each one runs now."""
    by_version: dict[str, list[TargetRef]] = defaultdict(list)
    observations = await plane.observe(refs) if refs else []
    for observation in observations:
        if observation.present and observation.version:
            by_version[observation.version].append(observation.target)
    written = 0
    for version, targets in sorted(by_version.items()):
        written += await write_assignments(
            ctx.api_client,
            request.namespace,
            request.correlation_id,
            targets,
            [o for o in observations if o.target in targets],
            version=version,
            artifact=None,
        )
    return written


BODIES: dict[str, tuple[str, Body]] = {
    "generate_evidence": ("GenerateEvidence", generate_evidence),
    "deploy_ring": ("Deploy", deploy_ring),
    "poll_ring": ("Monitor", poll_ring),
    "rollback_ring": ("Rollback", rollback_ring),
}
