"""Tool `check_status`: the status of one app (versions per ring, tasks, drift) or of one task.

Answers "what's the status of web?" and "how is task web-1-4-2 doing?". Read-only.
"""

from __future__ import annotations

from pydantic import Field

from agent.errors import ToolError
from agent.tools.base import Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.lookups import (
    assignment_drifted,
    bullet,
    objects_of,
    remediation_active,
    remediation_line,
    task_active,
    task_line,
    workloads,
)
from controller.api.assignment import Assignment
from controller.api.deploymenttask import DeploymentTask
from controller.api.meta import DnsLabel, ObjectName
from controller.api.policy import Permission
from controller.api.remediation import Remediation


class CheckStatusInput(ToolInput):
    app: DnsLabel | None = Field(None, description="The app, e.g. web")
    task: ObjectName | None = Field(None, description="A DeploymentTask name, e.g. web-1-4-2")


def describe_task(task: DeploymentTask) -> str:
    lines = [task_line(task)]
    for step in task.status.steps:
        note = f": {step.message}" if step.message else ""
        lines.append(f"  step {step.name.value}: {step.state.value}{note}")
    for ring in task.status.rings:
        rate = f", success {ring.success_rate:.0%}" if ring.success_rate is not None else ""
        lines.append(
            f"  ring {ring.ring}: {ring.updated}/{ring.targets} updated, {ring.healthy} healthy, {ring.failed} failed"
            f"{rate}, gate {ring.gate.value}"
        )
    if task.status.risk is not None:
        lines.append(f"  risk {task.status.risk.score} ({task.status.risk.label})")
    if task.status.change_request:
        lines.append(f"  change request {task.status.change_request}")
    return "\n".join(lines)


class CheckStatus(Tool[CheckStatusInput]):
    name = "check_status"
    description = (
        "Status of one app (its version and readiness in each ring, its deployment tasks, drift and fixes) "
        "or of one deployment task (phase, steps, rings, risk, change request)."
    )
    input_model = CheckStatusInput
    permission = Permission.READ

    async def run(self, args: CheckStatusInput, ctx: ToolContext) -> ToolOutput:
        if args.task:
            matches = [t for t in await objects_of(ctx, DeploymentTask) if t.metadata.name == args.task]
            if not matches:
                raise ToolError(f"There is no deployment task named {args.task}.")
            task = matches[0]
            return ToolOutput(text=describe_task(task), data={"task": task.metadata.name, "phase": task.status.phase})
        if not args.app:
            raise ToolError("Name an app or a task to check.")
        found = await workloads(ctx, app=args.app)
        tasks = await objects_of(ctx, DeploymentTask, args.app)
        assignments = [a for a in await objects_of(ctx, Assignment, args.app) if assignment_drifted(a)]
        names = {a.metadata.name for a in await objects_of(ctx, Assignment, args.app)}
        fixes = [r for r in await objects_of(ctx, Remediation) if r.spec.assignment in names and remediation_active(r)]
        if not found and not tasks:
            return ToolOutput(
                text=f"I found no workloads or deployment tasks for an app named {args.app}.",
                data={"app": args.app, "found": False},
            )
        active = [t for t in tasks if task_active(t)]
        text = f"Status of {args.app}:\n" + bullet((w.line() for w in found), "- no workloads in any ring")
        if active:
            text += "\nTasks in progress:\n" + bullet(task_line(t) for t in active)
        elif tasks:
            text += f"\nLast task: {task_line(tasks[-1])}"
        if assignments:
            text += "\nDrift:\n" + bullet(
                f"{a.metadata.name}: {a.status.drift.type.value if a.status.drift else 'drifted'}" for a in assignments
            )
        if fixes:
            text += "\nFixes in progress:\n" + bullet(remediation_line(r) for r in fixes)
        return ToolOutput(
            text=text,
            data={
                "app": args.app,
                "versions": {str(w.ring): w.version for w in found},
                "failing": [f"{w.namespace}/{w.name}" for w in found if w.failing],
                "active_tasks": [t.metadata.name for t in active],
                "drifted": [a.metadata.name for a in assignments],
            },
        )
