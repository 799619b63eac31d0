"""Tool `query_deployments`: what runs where — each app's workloads in a ring, and the tasks rolling out there.

Answers "show me deployments in ring 2" and "what is deployed in canary?". Read-only.
"""

from __future__ import annotations

from dataclasses import asdict

from pydantic import Field

from agent.router.entities import ring_label
from agent.tools.base import Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.lookups import bullet, objects_of, task_active, task_line, workloads
from controller.api.deploymenttask import DeploymentTask
from controller.api.meta import DnsLabel
from controller.api.policy import Permission


class QueryDeploymentsInput(ToolInput):
    ring: int | None = Field(
        None, ge=0, le=4, description="Ring: 0 Lab, 1 Canary, 2 Pilot, 3 Department, 4 Global; every ring if unset"
    )
    app: DnsLabel | None = Field(None, description="Only this app (e.g. web); every app if unset")


class QueryDeployments(Tool[QueryDeploymentsInput]):
    name = "query_deployments"
    description = (
        "List what is deployed: each app's workloads with version and readiness in one ring (or all rings), "
        "and the deployment tasks currently rolling out there."
    )
    input_model = QueryDeploymentsInput
    permission = Permission.READ

    async def run(self, args: QueryDeploymentsInput, ctx: ToolContext) -> ToolOutput:
        found = await workloads(ctx, ring=args.ring, app=args.app)
        tasks = [
            t
            for t in await objects_of(ctx, DeploymentTask, args.app)
            if task_active(t) and (args.ring is None or t.spec.max_ring >= args.ring)
        ]
        where = ring_label(args.ring) if args.ring is not None else "all rings"
        what = f"{args.app} in {where}" if args.app else where
        text = f"Deployments in {what}:\n" + bullet((w.line() for w in found), "- none found")
        if tasks:
            text += "\nRolling out now:\n" + bullet(task_line(t) for t in tasks)
        return ToolOutput(
            text=text,
            data={
                "workloads": [asdict(w) | {"failing": w.failing} for w in found],
                "tasks": [t.metadata.name for t in tasks],
            },
        )
