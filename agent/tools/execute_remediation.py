"""Tool `execute_remediation`: fix the drift on a target by opening a Remediation for its assignment.

The controller classifies the drift, checks policy (ring, risk, windows, blast radius, rate limits)
and either fixes and verifies it or escalates it to a human. Mutating: proposes first, acts on
"yes", as the asking user.
"""

from __future__ import annotations

from pydantic import Field

from agent.errors import ToolError
from agent.tools.base import Plan, Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.creating import create_remediation
from agent.tools.lookups import objects_of, remediation_active
from agent.tools.resolving import resolve_assignment
from controller.api.assignment import DriftType
from controller.api.meta import DnsLabel, Message
from controller.api.policy import Permission
from controller.api.remediation import Remediation, RemediationSpec


class ExecuteRemediationInput(ToolInput):
    target: str | None = Field(
        None, max_length=253, description="Assignment name (web-ring-0), workload (ring-0-lab/web) or device address"
    )
    app: DnsLabel | None = Field(None, description="The app, when no target is named")
    ring: int | None = Field(None, ge=0, le=4, description="The ring, with app")
    drift_type: DriftType | None = Field(None, description="The drift to fix; the controller classifies it if unset")
    dry_run: bool = Field(False, description="Only report what would be done")
    reason: Message | None = Field(None, description="Why")


async def refuse_if_busy(ctx: ToolContext, assignment: str) -> None:
    for remediation in await objects_of(ctx, Remediation):
        if remediation.spec.assignment == assignment and remediation_active(remediation):
            raise ToolError(f"Remediation {remediation.metadata.name} is already working on {assignment}.")


class ExecuteRemediation(Tool[ExecuteRemediationInput]):
    name = "execute_remediation"
    description = (
        "Propose fixing the drift on a target: opens a Remediation that the controller carries out within policy "
        "(or escalates to a human). Nothing happens until the user confirms with yes."
    )
    input_model = ExecuteRemediationInput
    permission = Permission.REMEDIATE
    mutating = True

    async def plan(self, args: ExecuteRemediationInput, ctx: ToolContext) -> Plan:
        assignment = await resolve_assignment(ctx, target=args.target, app=args.app, ring=args.ring)
        await refuse_if_busy(ctx, assignment.metadata.name)
        drift = args.drift_type or (assignment.status.drift.type if assignment.status.drift else None)
        what = f"{drift.value} drift" if drift else "the drift"
        dry = " as a dry run" if args.dry_run else ""
        return Plan(
            f"fix {what} of {assignment.metadata.name} ({assignment.spec.app} in ring {assignment.spec.ring}){dry} "
            f"with a Remediation requested by {ctx.user}; the controller acts within policy or escalates",
            arguments={**args.model_dump(exclude_none=True, mode="json"), "target": assignment.metadata.name},
        )

    async def execute(self, args: ExecuteRemediationInput, ctx: ToolContext, action_id: str) -> ToolOutput:
        assignment = await resolve_assignment(ctx, target=args.target, app=args.app, ring=args.ring)
        spec = RemediationSpec(
            assignment=assignment.metadata.name,
            drift_type=args.drift_type,
            dry_run=args.dry_run,
            reason=args.reason or f"Requested in chat (Conversation {ctx.conversation})",
        )
        ref = await create_remediation(ctx, action_id, assignment.metadata.namespace or ctx.namespace, spec)
        return ToolOutput(
            text=f"Created Remediation {ref.name} for {assignment.metadata.name}; the controller fixes it within "
            "policy or escalates it.",
            data={"remediation": ref.name, "namespace": ref.namespace},
            resources=(ref,),
        )
