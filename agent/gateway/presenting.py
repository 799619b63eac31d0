"""What a client sees of a Conversation: its state, pending proposal and links from the CR, the transcript
from PostgreSQL.

`state_of` folds the conditions into Ready | Replying | Failed (unanswered messages count as
Replying). `read_transcript` lists the stored messages after a seq: user turns, the assistant's
replies (a non-final round only when it said something) and tool results by their summary.
"""

from __future__ import annotations

from typing import Any, Literal

from agent.gateway.bodies import (
    ConversationSummary,
    ConversationView,
    Pending,
    ResourceLink,
    TranscriptMessage,
    Usage,
)
from controller.api.conversation import FAILED, REPLYING, Conversation
from controller.core.conditions import is_true
from controller.storage.db import Pool

TITLE_CHARS = 60
_TRANSCRIPT = """
SELECT seq, message_id, role, content, created_at FROM messages
WHERE conversation_id = %s AND seq > %s ORDER BY seq LIMIT %s
"""

State = Literal["Ready", "Replying", "Failed"]


def state_of(conversation: Conversation) -> State:
    status = conversation.status
    if is_true(status.conditions, REPLYING) or status.answered < len(conversation.spec.messages):
        return "Replying"
    if is_true(status.conditions, FAILED):
        return "Failed"
    return "Ready"


def summary_of(conversation: Conversation) -> ConversationSummary:
    messages = conversation.spec.messages
    title = messages[0].text.splitlines()[0][:TITLE_CHARS] if messages else "(new conversation)"
    times = [c.last_transition_time for c in conversation.status.conditions if c.last_transition_time]
    updated = max(times) if times else None
    return ConversationSummary(
        name=conversation.metadata.name,
        namespace=conversation.metadata.namespace or "default",
        user=conversation.spec.user,
        title=title,
        state=state_of(conversation),
        updated_at=updated,
    )


def _message(row: dict[str, Any]) -> TranscriptMessage | None:
    content: dict[str, Any] = row["content"] or {}
    role = row["role"]
    calls = None
    if role == "assistant":
        text = str(content.get("text") or "")
        calls = [{"id": c.get("id"), "name": c.get("name")} for c in content.get("tool_calls") or []] or None
        if not content.get("final") and not text and calls is None:
            return None
    elif role == "tool":
        text = str(content.get("summary") or content.get("text") or "")
    else:
        text = str(content.get("text") or "")
    return TranscriptMessage(
        seq=row["seq"],
        role=role,
        text=text,
        message_id=row["message_id"],
        tool_calls=calls,
        created_at=row["created_at"],
    )


async def read_transcript(pool: Pool, uid: str, after: int = 0, limit: int = 500) -> list[TranscriptMessage]:
    async with pool.connection() as conn:
        rows = await (await conn.execute(_TRANSCRIPT, (uid, after, limit))).fetchall()
    return [m for m in (_message(r) for r in rows) if m is not None]


def view_of(conversation: Conversation, messages: list[TranscriptMessage], last_event_id: int) -> ConversationView:
    status = conversation.status
    pending = status.pending
    namespace = conversation.metadata.namespace or "default"
    return ConversationView(
        name=conversation.metadata.name,
        namespace=namespace,
        user=conversation.spec.user,
        state=state_of(conversation),
        correlation_id=conversation.correlation_id or status.correlation_id or conversation.spec.correlation_id,
        pending=Pending(
            pending_id=pending.id, tool=pending.tool, summary=pending.summary, message_id=pending.message_id
        )
        if pending
        else None,
        resources=[
            ResourceLink(kind=r.kind, namespace=r.namespace or namespace, name=r.name) for r in status.resources
        ],
        usage=Usage(
            input_tokens=status.usage.input_tokens if status.usage else 0,
            output_tokens=status.usage.output_tokens if status.usage else 0,
        ),
        messages=messages,
        last_event_id=last_event_id,
    )
