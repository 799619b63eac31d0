"""Tool `list_failed_targets`: targets with deployment failures — workloads not ready, drifted assignments,
and rings where a rollout counted failed targets.

Answers "which devices have deployment failures?". Read-only.
"""

from __future__ import annotations

from pydantic import Field

from agent.tools.base import Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.lookups import assignment_drifted, bullet, objects_of, workloads
from controller.api.assignment import Assignment
from controller.api.deploymenttask import DeploymentTask
from controller.api.meta import DnsLabel
from controller.api.policy import Permission


class ListFailedTargetsInput(ToolInput):
    app: DnsLabel | None = Field(None, description="Only this app; every app if unset")
    ring: int | None = Field(None, ge=0, le=4, description="Only this ring (0-4); every ring if unset")


class ListFailedTargets(Tool[ListFailedTargetsInput]):
    name = "list_failed_targets"
    description = (
        "List targets (devices, workloads) with deployment failures: workloads that are not ready, assignments "
        "that drifted from their desired state, and rollout rings that counted failed targets."
    )
    input_model = ListFailedTargetsInput
    permission = Permission.READ

    async def run(self, args: ListFailedTargetsInput, ctx: ToolContext) -> ToolOutput:
        failing = [w for w in await workloads(ctx, ring=args.ring, app=args.app) if w.failing]
        drifted = [
            a
            for a in await objects_of(ctx, Assignment, args.app)
            if assignment_drifted(a) and (args.ring is None or a.spec.ring == args.ring)
        ]
        rollouts = []
        for task in await objects_of(ctx, DeploymentTask, args.app):
            for ring in task.status.rings:
                if ring.failed > 0 and (args.ring is None or ring.ring == args.ring):
                    rollouts.append(
                        f"{task.metadata.name}: {ring.failed} of {ring.targets} targets failed in ring {ring.ring}"
                    )
        lines = [w.line() for w in failing]
        lines += [
            f"{a.metadata.name} ({a.spec.app} in ring {a.spec.ring}): "
            f"{a.status.drift.type.value if a.status.drift else 'drifted'}"
            + (f" — {a.status.drift.detail}" if a.status.drift and a.status.drift.detail else "")
            for a in drifted
        ]
        lines += rollouts
        text = ("Targets with failures:\n" + bullet(lines, "")) if lines else "No target has a deployment failure."
        return ToolOutput(
            text=text,
            data={
                "not_ready": [f"{w.namespace}/{w.name}" for w in failing],
                "drifted": [a.metadata.name for a in drifted],
                "rollout_failures": rollouts,
            },
        )
