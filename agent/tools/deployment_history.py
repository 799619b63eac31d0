"""Tool `deployment_history`: past deployment tasks, newest first, with outcome and who asked.

Answers "show deployment history" and "what did we deploy recently?". Read-only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field

from agent.tools.base import Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.lookups import bullet, objects_of, task_line, when
from controller.api.deploymenttask import DeploymentTask
from controller.api.meta import DnsLabel
from controller.api.policy import Permission

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DeploymentHistoryInput(ToolInput):
    app: DnsLabel | None = Field(None, description="Only this app; every app if unset")
    limit: int = Field(10, ge=1, le=50, description="How many tasks to list")


class DeploymentHistory(Tool[DeploymentHistoryInput]):
    name = "deployment_history"
    description = (
        "Deployment history: past and current deployment and rollback tasks, newest first, with version, highest "
        "ring, outcome, who requested them and when they finished."
    )
    input_model = DeploymentHistoryInput
    permission = Permission.READ

    async def run(self, args: DeploymentHistoryInput, ctx: ToolContext) -> ToolOutput:
        tasks = await objects_of(ctx, DeploymentTask, args.app)
        tasks.sort(key=lambda t: t.status.started_at or t.status.finished_at or _EPOCH, reverse=True)
        shown = tasks[: args.limit]
        lines = [
            task_line(t) + (f", finished {when(t.status.finished_at)}" if t.status.finished_at else "") for t in shown
        ]
        subject = f" of {args.app}" if args.app else ""
        text = (
            (f"Deployment history{subject} (newest first):\n" + bullet(lines, ""))
            if lines
            else (f"No deployment history{subject} yet.")
        )
        return ToolOutput(
            text=text,
            data={
                "tasks": [
                    {
                        "name": t.metadata.name,
                        "version": t.spec.version,
                        "phase": t.status.phase,
                        "requested_by": t.spec.requested_by,
                    }
                    for t in shown
                ]
            },
        )
