"""Tool `cancel_task`: cancel a deployment task (the failing one, the app's running one, or one named).

Sets `spec.cancel: true`; the controller stops the task at the next safe point. Idempotent (the
patch sets a value), so a retried confirmation changes nothing twice. Mutating: proposes first,
acts on "yes".
"""

from __future__ import annotations

from pydantic import Field

from agent.errors import ToolError
from agent.tools.base import Plan, Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.lookups import task_active, task_line, task_phase
from agent.tools.resolving import resolve_task
from controller.api.kinds import DEPLOYMENT_TASK
from controller.api.meta import DnsLabel, ObjectName
from controller.api.policy import Permission
from controller.kube.client import ApiException


class CancelTaskInput(ToolInput):
    task: ObjectName | None = Field(None, description="The DeploymentTask; the failing (or only running) one if unset")
    app: DnsLabel | None = Field(None, description="The app whose running task to cancel, when no task is named")


class CancelTask(Tool[CancelTaskInput]):
    name = "cancel_task"
    description = (
        "Propose cancelling a running deployment task (with no name: the failing one, or the only one running). "
        "Nothing happens until the user confirms with yes."
    )
    input_model = CancelTaskInput
    permission = Permission.CANCEL
    mutating = True

    async def plan(self, args: CancelTaskInput, ctx: ToolContext) -> Plan:
        task = await resolve_task(ctx, args.task, args.app)
        if not task_active(task):
            raise ToolError(f"Task {task.metadata.name} has already finished ({task_phase(task)}).")
        if task.spec.cancel:
            raise ToolError(f"Task {task.metadata.name} is already being cancelled.")
        return Plan(
            f"cancel {task_line(task)}; it stops at the next safe point",
            arguments={"task": task.metadata.name},
        )

    async def execute(self, args: CancelTaskInput, ctx: ToolContext, action_id: str) -> ToolOutput:
        task = await resolve_task(ctx, args.task, args.app)
        namespace = task.metadata.namespace or ctx.namespace
        try:
            await ctx.objects.patch(DEPLOYMENT_TASK, namespace, task.metadata.name, {"spec": {"cancel": True}})
        except ApiException as error:
            raise ToolError(f"I could not cancel {task.metadata.name} (HTTP {error.status}: {error.reason})") from error
        return ToolOutput(
            text=f"Cancelling task {task.metadata.name}; it stops at the next safe point.",
            data={"task": task.metadata.name},
        )
