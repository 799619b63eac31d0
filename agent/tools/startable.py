"""Whether a change can start now: the live task already changing an app, said before anything is proposed.

The controller lets one change per app be active (`ActiveChangeExists`). The deploy and rollback tools
ask here first, so the user hears which task is in the way and is offered to cancel it or wait,
instead of confirming a task that would be refused. A rollback is the domain's fast path: the
rollout it undoes does not block it (the tool cancels that rollout when it starts the rollback).
"""

from __future__ import annotations

from agent.tools.base import ToolContext
from agent.tools.lookups import objects_of, task_active, task_line
from controller.api.deploymenttask import Action, DeploymentTask
from controller.core.conditions import INVALID_SPEC, is_true


def live(task: DeploymentTask) -> bool:
    """Still changing its app: not ended, and not rejected (a rejected spec changes nothing)."""
    return task_active(task) and not is_true(task.status.conditions, INVALID_SPEC)


async def blocking_task(ctx: ToolContext, app: str, *, undoing: str | None = None) -> DeploymentTask | None:
    """The live task changing `app`, if any; with `undoing`, the rollout of that version does not count."""
    for task in await objects_of(ctx, DeploymentTask, app):
        if not live(task):
            continue
        if undoing is not None and task.spec.action is Action.DEPLOY and task.spec.version == undoing:
            continue
        return task
    return None


async def undone_rollout(ctx: ToolContext, app: str, version: str) -> DeploymentTask | None:
    """The live rollout of `app` at `version` that a rollback of that version pre-empts."""
    for task in await objects_of(ctx, DeploymentTask, app):
        if live(task) and task.spec.action is Action.DEPLOY and task.spec.version == version:
            return task
    return None


def busy(task: DeploymentTask) -> str:
    """What the user hears when `task` is in the way, with the two ways on."""
    name = task.metadata.name
    return (
        f"{task.spec.app} is already being changed by {task_line(task)}, and only one change per app may be "
        f'run at a time. Say "cancel {name}" to stop it, or wait until it ends (ask me for the status of {name}) '
        "and ask again."
    )
