"""Finding the one object a mutating request is about: an assignment (target), a change request, a task.

The user may name it exactly, name only an app (and a ring), or say "the failing task" / "the failed
service"; these functions pick the single match or raise `ToolError` listing the candidates, so the
model (or the offline router's reply) can ask which one is meant. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.errors import ToolError
from agent.tools.base import ToolContext
from agent.tools.lookups import (
    assignment_drifted,
    change_pending,
    objects_of,
    task_active,
    task_failing,
    workloads,
)
from controller.api.assignment import Assignment, DriftType
from controller.api.changerequest import ChangeRequest
from controller.api.deploymenttask import DeploymentTask


def _one(candidates: list[str], what: str, hint: str) -> None:
    if len(candidates) > 1:
        shown = ", ".join(candidates[:10])
        raise ToolError(f"Several {what} match: {shown}. {hint}")


def _matches_target(assignment: Assignment, target: str) -> bool:
    if assignment.metadata.name == target:
        return True
    spec = assignment.spec.target
    return ("/" in target and target == f"{spec.namespace}/{spec.name}") or target == spec.address


async def resolve_assignment(
    ctx: ToolContext,
    *,
    target: str | None,
    app: str | None,
    ring: int | None,
    prefer: Callable[[Assignment], bool] = assignment_drifted,
) -> Assignment:
    """The assignment a target names (its name, `namespace/workload`, a device address, or app + ring)."""
    everything = await objects_of(ctx, Assignment)
    if target is not None:
        found = [a for a in everything if _matches_target(a, target)]
        if not found:
            raise ToolError(
                f"No assignment matches target {target}. Name an assignment (e.g. web-ring-0) or a workload "
                "(e.g. ring-0-lab/web) that Ringpilot manages."
            )
    else:
        found = [a for a in everything if (app is None or a.spec.app == app) and (ring is None or a.spec.ring == ring)]
        if app is None and ring is None:
            found = [a for a in found if prefer(a)]
        if not found:
            subject = " ".join(x for x in (app or "", f"in ring {ring}" if ring is not None else "") if x)
            raise ToolError(f"No assignment matches {subject or 'that'}; Ringpilot only fixes targets it manages.")
        preferred = [a for a in found if prefer(a)]
        found = preferred or found
    _one([a.metadata.name for a in found], "assignments", "Which target do you mean?")
    return found[0]


def service_down(assignment: Assignment) -> bool:
    drift = assignment.status.drift
    return assignment_drifted(assignment) and drift is not None and drift.type is DriftType.SERVICE_DOWN


async def resolve_failed_service(
    ctx: ToolContext, *, target: str | None, app: str | None, ring: int | None
) -> Assignment:
    """The service to restart: the one named, else the one that is down (ServiceDown drift or not ready)."""
    failing = {(w.namespace, w.name) for w in await workloads(ctx, ring=ring, app=app) if w.failing}

    def down(a: Assignment) -> bool:
        spec = a.spec.target
        return service_down(a) or (spec.namespace, spec.name) in failing

    if target is None and app is None and ring is None:
        candidates = [a for a in await objects_of(ctx, Assignment) if down(a)]
        if not candidates:
            if failing:
                names = ", ".join(f"{ns}/{name}" for ns, name in sorted(failing))
                raise ToolError(f"{names} is not ready, but no Assignment manages it, so I cannot restart it.")
            raise ToolError("No service is down right now; name the one to restart (e.g. web in ring 0).")
        _one([a.metadata.name for a in candidates], "failed services", "Which one should I restart?")
        return candidates[0]
    return await resolve_assignment(ctx, target=target, app=app, ring=ring, prefer=down)


async def resolve_change(ctx: ToolContext, name: str | None) -> ChangeRequest:
    """The change request named, or the only one pending."""
    changes = await objects_of(ctx, ChangeRequest)
    if name is not None:
        found = [c for c in changes if c.metadata.name == name]
        if not found:
            raise ToolError(f"There is no change request named {name}.")
        return found[0]
    pending = [c for c in changes if change_pending(c)]
    if not pending:
        raise ToolError("No change request is waiting for a decision.")
    _one([c.metadata.name for c in pending], "pending change requests", "Which one do you mean?")
    return pending[0]


async def resolve_task(ctx: ToolContext, name: str | None, app: str | None) -> DeploymentTask:
    """The task named; else the app's running task; else the failing one; else the only running one."""
    tasks = await objects_of(ctx, DeploymentTask, app)
    if name is not None:
        found = [t for t in tasks if t.metadata.name == name]
        if not found:
            raise ToolError(f"There is no deployment task named {name}.")
        return found[0]
    active = [t for t in tasks if task_active(t)]
    if not active:
        raise ToolError("No deployment task is running" + (f" for {app}." if app else "."))
    failing = [t for t in active if task_failing(t)]
    chosen = failing or active
    _one(
        [t.metadata.name for t in chosen],
        "running tasks" if not failing else "failing tasks",
        "Which task do you mean?",
    )
    return chosen[0]
