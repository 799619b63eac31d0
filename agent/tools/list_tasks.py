"""Tool `list_tasks`: the asynchronous work in flight — deployment tasks and remediations not finished yet.

Answers "what async tasks are running?". Read-only.
"""

from __future__ import annotations

from pydantic import Field

from agent.tools.base import Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.lookups import (
    bullet,
    objects_of,
    remediation_active,
    remediation_line,
    task_active,
    task_failing,
    task_line,
)
from controller.api.deploymenttask import DeploymentTask
from controller.api.policy import Permission
from controller.api.remediation import Remediation


class ListTasksInput(ToolInput):
    include_finished: bool = Field(False, description="Also list finished tasks")


class ListTasks(Tool[ListTasksInput]):
    name = "list_tasks"
    description = (
        "List asynchronous work: deployment tasks (with phase and current ring) and remediations that are still "
        "running, flagging the ones that are failing."
    )
    input_model = ListTasksInput
    permission = Permission.READ

    async def run(self, args: ListTasksInput, ctx: ToolContext) -> ToolOutput:
        tasks = [t for t in await objects_of(ctx, DeploymentTask) if args.include_finished or task_active(t)]
        fixes = [r for r in await objects_of(ctx, Remediation) if args.include_finished or remediation_active(r)]
        lines = [task_line(t) + (" (FAILING)" if task_failing(t) else "") for t in tasks]
        lines += [remediation_line(r) for r in fixes]
        text = ("Running tasks:\n" + bullet(lines, "")) if lines else "Nothing is running right now."
        return ToolOutput(
            text=text,
            data={
                "tasks": [
                    {"name": t.metadata.name, "phase": t.status.phase, "failing": task_failing(t)} for t in tasks
                ],
                "remediations": [r.metadata.name for r in fixes],
            },
        )
