"""Tool `restart_service`: restart a failed service (a rollout restart through a Remediation).

Without a name it picks "the failed service": the one managed workload that is down. Opens a
Remediation with drift ServiceDown and action Restart, within the remediation policy. Mutating:
proposes first, acts on "yes".
"""

from __future__ import annotations

from pydantic import Field

from agent.tools.base import Plan, Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.creating import create_remediation
from agent.tools.execute_remediation import refuse_if_busy
from agent.tools.resolving import resolve_failed_service
from controller.api.assignment import DriftType
from controller.api.meta import DnsLabel, Message
from controller.api.policy import Permission
from controller.api.remediation import FixAction, RemediationSpec


class RestartServiceInput(ToolInput):
    target: str | None = Field(
        None, max_length=253, description="Assignment name or workload (ring-0-lab/web); the failed one if unset"
    )
    app: DnsLabel | None = Field(None, description="The app, when no target is named")
    ring: int | None = Field(None, ge=0, le=4, description="The ring, with app")
    reason: Message | None = Field(None, description="Why")


class RestartService(Tool[RestartServiceInput]):
    name = "restart_service"
    description = (
        "Propose restarting a service (rollout restart of its workload) through a Remediation; with no target it "
        "picks the one managed service that is down. Nothing happens until the user confirms with yes."
    )
    input_model = RestartServiceInput
    permission = Permission.RESTART
    mutating = True

    async def plan(self, args: RestartServiceInput, ctx: ToolContext) -> Plan:
        assignment = await resolve_failed_service(ctx, target=args.target, app=args.app, ring=args.ring)
        await refuse_if_busy(ctx, assignment.metadata.name)
        where = assignment.spec.target
        return Plan(
            f"restart {assignment.spec.app} in ring {assignment.spec.ring} ({where.namespace}/{where.name}, "
            f"assignment {assignment.metadata.name}) with a Remediation requested by {ctx.user}",
            arguments={**args.model_dump(exclude_none=True), "target": assignment.metadata.name},
        )

    async def execute(self, args: RestartServiceInput, ctx: ToolContext, action_id: str) -> ToolOutput:
        assignment = await resolve_failed_service(ctx, target=args.target, app=args.app, ring=args.ring)
        spec = RemediationSpec(
            assignment=assignment.metadata.name,
            drift_type=DriftType.SERVICE_DOWN,
            action=FixAction.RESTART,
            reason=args.reason or f"Restart requested in chat (Conversation {ctx.conversation})",
        )
        ref = await create_remediation(ctx, action_id, assignment.metadata.namespace or ctx.namespace, spec)
        return ToolOutput(
            text=f"Created Remediation {ref.name}: restarting {assignment.spec.app} in ring {assignment.spec.ring}.",
            data={"remediation": ref.name, "namespace": ref.namespace},
            resources=(ref,),
        )
