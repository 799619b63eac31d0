"""DeploymentTasks as `ringpilot tasks` shows them: the query behind `GET /api/v1/tasks`.

`list_tasks` lists DeploymentTasks (one namespace or all) with the caller's Kubernetes client, keeps
the app and phase asked for, and folds each into a `TaskSummary`: one `RingSummary` per planned ring,
from the status's ring progress, or from the plan's target count before a ring starts. A body the
models refuse (written by a newer controller) still shows, with what can be read of it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from agent.gateway.consoleviews import RingSummary, TaskList, TaskSummary
from controller.api.deploymenttask import DeploymentTask
from controller.api.kinds import DEPLOYMENT_TASK
from controller.kube.client import CustomObjects

logger = logging.getLogger(__name__)

_OLDEST = datetime.min.replace(tzinfo=UTC)


def _rings(task: DeploymentTask) -> list[RingSummary]:
    status = task.status
    planned = status.plan.targets if status.plan is not None else []
    max_ring = status.plan.max_ring if status.plan is not None else task.spec.max_ring
    progress = {ring.ring: ring for ring in status.rings}
    rings: list[RingSummary] = []
    for number in range(max_ring + 1):
        seen = progress.get(number)
        if seen is None:
            targets = planned[number] if number < len(planned) else 0
            rings.append(RingSummary(ring=number, targets=targets))
            continue
        rings.append(
            RingSummary(
                ring=number,
                targets=seen.targets,
                updated=seen.updated,
                healthy=seen.healthy,
                failed=seen.failed,
                success_rate=seen.success_rate,
                gate=seen.gate.value,
                threshold=seen.threshold,
                rolled_back=seen.rolled_back,
            )
        )
    return rings


def _created(body: dict[str, Any]) -> datetime | None:
    stamp = (body.get("metadata") or {}).get("creationTimestamp")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if isinstance(stamp, str) else None


def summarize(body: dict[str, Any]) -> TaskSummary:
    """The `TaskSummary` of one DeploymentTask body."""
    try:
        task = DeploymentTask.from_body(body)
    except ValidationError as error:
        meta, spec = body.get("metadata") or {}, body.get("spec") or {}
        logger.warning("DeploymentTask %s/%s does not parse: %s", meta.get("namespace"), meta.get("name"), error)
        return TaskSummary(
            name=str(meta.get("name", "")),
            namespace=str(meta.get("namespace", "")),
            app=str(spec.get("app", "")),
            version=str(spec.get("version", "")),
            max_ring=0,
            phase=str((body.get("status") or {}).get("phase") or "Unknown"),
            created_at=_created(body),
        )
    meta, spec, status = task.metadata, task.spec, task.status
    return TaskSummary(
        name=meta.name,
        namespace=meta.namespace or "",
        app=spec.app,
        version=spec.version,
        action=spec.action.value,
        max_ring=spec.max_ring,
        phase=status.phase.value if status.phase is not None else None,
        current_step=status.current_step,
        current_ring=status.current_ring,
        progress=status.progress,
        requested_by=spec.requested_by,
        correlation_id=status.correlation_id or spec.correlation_id or task.correlation_id,
        change_request=status.change_request,
        created_at=_created(body),
        rings=_rings(task),
    )


async def list_tasks(
    objects: CustomObjects, *, namespace: str | None = None, app: str | None = None, phase: str | None = None
) -> TaskList:
    """DeploymentTasks in `namespace` (None: every namespace), of `app`, in `phase`; newest first."""
    bodies = await objects.list_raw(DEPLOYMENT_TASK, namespace)
    items = [summarize(body) for body in bodies]
    items = [
        item
        for item in items
        if (not app or item.app == app) and (not phase or (item.phase or "").lower() == phase.lower())
    ]
    items.sort(key=lambda item: (item.created_at or _OLDEST, item.name), reverse=True)
    return TaskList(items=items)
