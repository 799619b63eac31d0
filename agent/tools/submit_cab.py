"""Tool `submit_cab`: submit a deployment for CAB approval.

In Ringpilot the CAB record (ChangeRequest) is opened by the controller for a DeploymentTask whose
risk requires it, so submitting means creating the task with a reason for the approvers; the
controller scores it and opens the ChangeRequest for the rings that need approval. Mutating:
proposes first, acts on "yes".
"""

from __future__ import annotations

from pydantic import Field

from agent.router.entities import ring_label
from agent.tools.base import Plan, Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.creating import create_task
from agent.tools.deploy import DeployInput, check_app, task_spec
from controller.api.deploymenttask import ImageTag
from controller.api.meta import DnsLabel, Message
from controller.api.policy import Permission


class SubmitCabInput(ToolInput):
    app: DnsLabel = Field(description="The app, e.g. payments")
    version: ImageTag = Field(description="The version (image tag), e.g. 2.0.0")
    max_ring: int = Field(4, ge=0, le=4, description="Highest ring the change should reach (default 4 Global)")
    reason: Message | None = Field(None, description="Why; shown to the approvers")


def _as_deploy(args: SubmitCabInput) -> DeployInput:
    return DeployInput(app=args.app, version=args.version, max_ring=args.max_ring, reason=args.reason)


class SubmitCab(Tool[SubmitCabInput]):
    name = "submit_cab"
    description = (
        "Propose submitting APP at VERSION (up to max_ring) for CAB approval: creates the deployment task whose "
        "ChangeRequest the approvers review. Nothing happens until the user confirms with yes."
    )
    input_model = SubmitCabInput
    permission = Permission.SUBMIT_CAB
    mutating = True

    async def plan(self, args: SubmitCabInput, ctx: ToolContext) -> Plan:
        task_spec(_as_deploy(args), ctx, "")
        now = await check_app(ctx, args.app, args.max_ring)
        return Plan(
            f"submit {args.app} {args.version} (up to {ring_label(args.max_ring)}{now}) for CAB approval: a new "
            f"DeploymentTask requested by {ctx.user}, for which the controller opens a ChangeRequest when its risk "
            "requires approval"
        )

    async def execute(self, args: SubmitCabInput, ctx: ToolContext, action_id: str) -> ToolOutput:
        reason = f"Submitted for CAB approval in chat (Conversation {ctx.conversation})"
        ref = await create_task(ctx, action_id, task_spec(_as_deploy(args), ctx, reason))
        return ToolOutput(
            text=f"Submitted: DeploymentTask {ref.name} ({args.app} {args.version}). The controller scores its risk "
            "and opens a ChangeRequest for approvers when a ring needs one; ask me for pending approvals to follow it.",
            data={"task": ref.name, "namespace": ref.namespace},
            resources=(ref,),
        )
