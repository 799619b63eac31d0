"""What a turn streams to the gateway: the events of gateway-chart.md §1.3, written through `EventLog`.

`TurnEvents` names each event of one turn with a key (`<message id>/<event>[/<detail>]`), so a retried
or resumed turn stores every event once. The worker streams the answer only after the Conversation's
status holds it, so a client that reacts to `confirmation.required` never finds the proposal stale.
Without an `EventLog` (unit tests of the engine alone) every method does nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.chat.events import EventLog, EventName
from agent.llm.base import ToolCall
from controller.api.conversation import ResourceRef

if TYPE_CHECKING:
    from agent.conversation.engine import TurnRequest, TurnResult
    from agent.tools.registry import Invocation

MAX_SUMMARY_CHARS = 1024


def _when(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class TurnEvents:
    """The stream side of a turn (see the module docstring)."""

    def __init__(self, log: EventLog | None) -> None:
        self.log = log

    async def emit(self, req: TurnRequest, key: str, event: EventName, data: dict[str, Any]) -> None:
        if self.log is not None:
            await self.log.emit(
                req.conversation_uid,
                f"{req.message_id}/{key}",
                event,
                data,
                turn_id=req.message_id,
                correlation_id=req.correlation_id,
            )

    async def started(self, req: TurnRequest, attempt: int) -> None:
        await self.emit(
            req, f"turn.started/{attempt}", "turn.started", {"messageId": req.message_id, "attempt": attempt}
        )

    async def tool_started(self, req: TurnRequest, call: ToolCall, mutating: bool) -> None:
        data = {"callId": call.id, "tool": call.name, "mutating": mutating}
        await self.emit(req, f"tool.started/{call.id}", "tool.started", data)

    async def tool_finished(self, req: TurnRequest, inv: Invocation) -> None:
        data = {
            "callId": inv.call.id,
            "tool": inv.call.name,
            "outcome": inv.outcome,
            "summary": inv.output.text[:MAX_SUMMARY_CHARS],
        }
        await self.emit(req, f"tool.finished/{inv.call.id}", "tool.finished", data)

    async def resource_created(self, req: TurnRequest, ref: ResourceRef) -> None:
        data = {"kind": ref.kind, "namespace": ref.namespace or req.namespace, "name": ref.name}
        await self.emit(req, f"resource.created/{ref.kind}/{ref.name}", "resource.created", data)

    async def answered(self, req: TurnRequest, result: TurnResult) -> None:
        """The proposal (if any), the reply, and the turn's end."""
        mid = req.message_id
        if result.pending is not None:
            pending = result.pending
            data = {"pendingId": pending.id, "tool": pending.tool, "summary": pending.summary, "expiresAt": None}
            await self.emit(req, "confirmation.required", "confirmation.required", data)
        await self.emit(req, "assistant.message", "assistant.message", {"messageId": mid, "text": result.reply})
        if result.failure is not None:
            failure = result.failure
            failed = {"messageId": mid, "reason": failure.reason, "message": str(failure), "retryAt": None}
            await self.emit(req, "turn.failed", "turn.failed", failed)
        else:
            usage = {"inputTokens": result.usage.input_tokens, "outputTokens": result.usage.output_tokens}
            await self.emit(req, "turn.completed", "turn.completed", {"messageId": mid, "usage": usage})

    async def delayed(self, req: TurnRequest, reason: str, message: str, attempt: int, retry_at: datetime) -> None:
        """The turn failed for now and will be tried again at `retry_at`."""
        data = {"messageId": req.message_id, "reason": reason, "message": message, "retryAt": _when(retry_at)}
        await self.emit(req, f"turn.failed/{attempt}", "turn.failed", data)
