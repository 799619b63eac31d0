"""Tool `deploy`: "deploy APP VERSION to ring N" — a new DeploymentTask through rings 0..N, requested by the user.

Mutating: proposes first, unless a live task is already changing the app (then it says which, and
offers to cancel it or wait); on "yes" the task is created through `TaskOrchestrator` with the
conversation's correlation ID. The controller then drives the chain (validation, evidence, CAB
when the risk requires it, ring-by-ring rollout with gates).
"""

from __future__ import annotations

from pydantic import Field

from agent.errors import ToolError
from agent.router.entities import RING_LABELS, ring_label
from agent.tools.base import Plan, Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.creating import create_task
from agent.tools.lookups import workloads
from agent.tools.startable import blocking_task, busy
from controller.api.deploymenttask import DeploymentTaskSpec, ImageTag
from controller.api.meta import DnsLabel, Message
from controller.api.policy import Permission
from controller.api.semantics import check_deployment_task


class DeployInput(ToolInput):
    app: DnsLabel = Field(description="The app to ship, e.g. web")
    version: ImageTag = Field(description="The version (image tag) to ship, e.g. 1.4.2")
    max_ring: int = Field(ge=0, le=4, description="Highest ring: 0 Lab, 1 Canary, 2 Pilot, 3 Department, 4 Global")
    reason: Message | None = Field(None, description="Why; shown to approvers")


def task_spec(args: DeployInput, ctx: ToolContext, default_reason: str) -> DeploymentTaskSpec:
    spec = DeploymentTaskSpec(
        app=args.app,
        version=args.version,
        max_ring=args.max_ring,
        requested_by=ctx.user,
        reason=args.reason or default_reason,
        correlation_id=ctx.correlation_id,
    )
    problems = check_deployment_task(spec)
    if problems:
        raise ToolError("; ".join(str(p) for p in problems))
    return spec


async def check_app(ctx: ToolContext, app: str, max_ring: int) -> str:
    """What runs now in rings 0..max_ring (for the summary); ToolError if the app runs nowhere."""
    running = await workloads(ctx, app=app)
    if not running:
        raise ToolError(f"No workload of an app named {app} runs in any ring, so there is nothing to update.")
    versions = sorted({w.version for w in running if w.ring <= max_ring})
    return f"; now running {', '.join(versions)}" if versions else ""


class Deploy(Tool[DeployInput]):
    name = "deploy"
    description = (
        "Propose shipping APP at VERSION through rings 0..max_ring as a new deployment task. Nothing happens until "
        "the user confirms with yes; the controller then decides by risk whether CAB approval is needed."
    )
    input_model = DeployInput
    permission = Permission.DEPLOY
    mutating = True

    async def plan(self, args: DeployInput, ctx: ToolContext) -> Plan:
        task_spec(args, ctx, "")
        now = await check_app(ctx, args.app, args.max_ring)
        blocker = await blocking_task(ctx, args.app)
        if blocker is not None:
            raise ToolError(busy(blocker))
        return Plan(
            f"deploy {args.app} {args.version} to rings 0-{args.max_ring} (up to {RING_LABELS[args.max_ring]}{now}) "
            f"as a new DeploymentTask requested by {ctx.user}"
        )

    async def execute(self, args: DeployInput, ctx: ToolContext, action_id: str) -> ToolOutput:
        spec = task_spec(args, ctx, f"Requested in chat (Conversation {ctx.conversation})")
        blocker = await blocking_task(ctx, args.app)
        if blocker is not None and blocker.metadata.name != ctx.resource_name(f"{args.app}-{args.version}", action_id):
            raise ToolError(busy(blocker))  # started since the proposal (a retried yes finds its own task: fine)
        ref = await create_task(ctx, action_id, spec)
        return ToolOutput(
            text=f"Created DeploymentTask {ref.name}: {args.app} {args.version} up to {ring_label(args.max_ring)}. "
            "Ask me for its status any time.",
            data={"task": ref.name, "namespace": ref.namespace},
            resources=(ref,),
        )
