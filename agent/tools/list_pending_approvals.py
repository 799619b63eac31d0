"""Tool `list_pending_approvals`: change requests waiting for a CAB decision.

Answers "show me pending approvals". Marks the ones the asking user submitted (they may not approve
those themselves). Read-only.
"""

from __future__ import annotations

from agent.tools.base import Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.lookups import bullet, change_line, change_pending, objects_of, when
from controller.api.changerequest import ChangeRequest
from controller.api.policy import Permission


class ListPendingApprovalsInput(ToolInput):
    pass


class ListPendingApprovals(Tool[ListPendingApprovalsInput]):
    name = "list_pending_approvals"
    description = (
        "List change requests (CAB) waiting for a decision: app, version, highest ring, risk score, approvals "
        "so far and required, who submitted it, and the review deadline."
    )
    input_model = ListPendingApprovalsInput
    permission = Permission.READ

    async def run(self, args: ListPendingApprovalsInput, ctx: ToolContext) -> ToolOutput:
        pending = [c for c in await objects_of(ctx, ChangeRequest) if change_pending(c)]
        lines = []
        for change in pending:
            line = change_line(change)
            if change.spec.review_deadline:
                line += f", deadline {when(change.spec.review_deadline)}"
            if change.spec.submitted_by == ctx.user:
                line += " (yours: someone else must approve it)"
            lines.append(line)
        text = ("Pending approvals:\n" + bullet(lines, "")) if lines else "No change request is waiting for approval."
        return ToolOutput(text=text, data={"pending": [c.metadata.name for c in pending]})
