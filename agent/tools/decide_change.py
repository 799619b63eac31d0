"""Tool `decide_change`: approve (with conditions) or reject a change request on the asking approver's behalf.

Separation of duties is checked here, in code: whoever submitted the change or requested its task
may not decide it, and an approver decides a change once. Conditions are machine-readable
(`maxRing`, `minSuccessRate`) and the decision binds to the plan digest the user was shown. The
decision is appended to `spec.decisions` with an optimistic-concurrency patch. Mutating: proposes
first, acts on "yes"; the AI never approves on its own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.errors import ToolError
from agent.router.entities import ring_label
from agent.tools.base import Plan, Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.lookups import change_pending, objects_of
from agent.tools.resolving import resolve_change
from controller.api.changerequest import ApprovalConditions, ChangeRequest, Decision, DecisionRecord
from controller.api.deploymenttask import DeploymentTask
from controller.api.kinds import CHANGE_REQUEST
from controller.api.meta import ObjectName
from controller.api.policy import Permission
from controller.kube.client import ApiException


class DecideChangeInput(ToolInput):
    change_request: ObjectName | None = Field(None, description="The ChangeRequest; the only pending one if unset")
    decision: Literal["Approve", "Reject"] = Field(description="Approve or Reject")
    max_ring: int | None = Field(None, ge=0, le=4, description="Approval condition: go no further than this ring")
    min_success_rate: float | None = Field(
        None, gt=0, le=1, description="Approval condition: gate every ring at this success rate (0-1)"
    )
    comment: str | None = Field(None, max_length=2048, description="Why")
    plan_digest: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="Set by the proposal; leave unset")


async def check_may_decide(ctx: ToolContext, change: ChangeRequest) -> None:
    """Separation of duties and state, enforced in code whatever the model or the message says."""
    name = change.metadata.name
    if not change_pending(change):
        phase = change.status.phase.value if change.status.phase else "decided"
        raise ToolError(f"Change request {name} is already {phase}.")
    if change.spec.submitted_by == ctx.user:
        raise ToolError(f"You submitted change request {name}; someone else must approve or reject it.")
    tasks = [t for t in await objects_of(ctx, DeploymentTask) if t.metadata.name == change.spec.task]
    if tasks and tasks[0].spec.requested_by == ctx.user:
        raise ToolError(f"You requested task {change.spec.task}; someone else must decide its change request {name}.")
    if any(d.approver == ctx.user for d in change.spec.decisions):
        raise ToolError(f"You have already decided change request {name}.")


def conditions_of(args: DecideChangeInput, change: ChangeRequest) -> ApprovalConditions | None:
    if args.decision == "Reject" or (args.max_ring is None and args.min_success_rate is None):
        return None
    if args.max_ring is not None and args.max_ring > change.spec.max_ring:
        raise ToolError(f"Ring {args.max_ring} is beyond the plan's highest ring {change.spec.max_ring}.")
    return ApprovalConditions(max_ring=args.max_ring, min_success_rate=args.min_success_rate)


def describe(conditions: ApprovalConditions | None) -> str:
    if conditions is None:
        return ""
    parts = []
    if conditions.max_ring is not None:
        parts.append(f"only up to {ring_label(conditions.max_ring)}")
    if conditions.min_success_rate is not None:
        parts.append(f"at least {conditions.min_success_rate:.1%} success in every ring")
    return " with conditions: " + ", ".join(parts)


class DecideChange(Tool[DecideChangeInput]):
    name = "decide_change"
    description = (
        "Propose approving (optionally with conditions: max_ring, min_success_rate) or rejecting a change request "
        "on behalf of the asking CAB approver. Nothing happens until the user confirms with yes."
    )
    input_model = DecideChangeInput
    permission = Permission.APPROVE
    mutating = True

    async def plan(self, args: DecideChangeInput, ctx: ToolContext) -> Plan:
        change = await resolve_change(ctx, args.change_request)
        await check_may_decide(ctx, change)
        conditions = conditions_of(args, change)
        verb = "approve" if args.decision == "Approve" else "reject"
        spec = change.spec
        return Plan(
            f"{verb} change request {change.metadata.name} ({spec.app} {spec.version} up to ring {spec.max_ring}, "
            f"risk {spec.risk_score}) as {ctx.user}{describe(conditions)}",
            arguments={
                **args.model_dump(exclude_none=True),
                "change_request": change.metadata.name,
                "plan_digest": spec.plan_digest,
            },
        )

    async def execute(self, args: DecideChangeInput, ctx: ToolContext, action_id: str) -> ToolOutput:
        for _ in range(3):
            change = await resolve_change(ctx, args.change_request)
            namespace = change.metadata.namespace or ctx.namespace
            if any(d.approver == ctx.user for d in change.spec.decisions):
                break  # recorded by an earlier try of this confirmation
            await check_may_decide(ctx, change)
            record = DecisionRecord(
                approver=ctx.user,
                decision=Decision(args.decision),
                conditions=conditions_of(args, change),
                comment=(args.comment or "Decided in chat")[:2048],
                decided_at=ctx.services.now(),
                plan_digest=args.plan_digest or change.spec.plan_digest,
            )
            decisions = [d.to_wire() for d in change.spec.decisions] + [record.to_wire()]
            body = {"metadata": {"resourceVersion": change.metadata.resource_version}, "spec": {"decisions": decisions}}
            try:
                await ctx.objects.patch(CHANGE_REQUEST, namespace, change.metadata.name, body)
                break
            except ApiException as error:
                if error.status != 409:
                    raise ToolError(
                        f"I could not record the decision on {change.metadata.name} "
                        f"(HTTP {error.status}: {error.reason})"
                    ) from error
        else:
            raise ToolError(f"Change request {args.change_request} kept changing; please try again.")
        verb = "Approved" if args.decision == "Approve" else "Rejected"
        return ToolOutput(
            text=f"{verb} change request {change.metadata.name} as {ctx.user}{describe(conditions_of(args, change))}.",
            data={"change_request": change.metadata.name, "decision": args.decision},
        )
