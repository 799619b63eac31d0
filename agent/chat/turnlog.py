"""The turn log in PostgreSQL: each user turn's progress, every tool call, and the resources a chat created.

`TurnLog` is what makes a turn resumable and auditable: `chat_turns` holds attempts and the next
try of a delayed turn (so a retry never comes early and a crash never loses the count),
`chat_tool_calls` every call with its permission and outcome, `chat_resources` what confirmed
actions created. Writes invalidate the context cache through the `ChatStateManager`.
"""

from __future__ import annotations

from datetime import datetime

from psycopg.types.json import Jsonb

from agent.chat.models import TurnState
from agent.chat.state import ChatStateManager
from controller.api.conversation import ResourceRef
from controller.storage.db import Pool

_GET_TURN = """
SELECT conversation_id, message_id, state, attempts, next_attempt_at, error_reason, error_message, correlation_id
FROM chat_turns WHERE conversation_id = %s AND message_id = %s
"""
_SAVE_TURN = """
INSERT INTO chat_turns
    (conversation_id, message_id, state, attempts, next_attempt_at, error_reason, error_message, correlation_id)
VALUES (%(conversation_id)s, %(message_id)s, %(state)s, %(attempts)s, %(next_attempt_at)s, %(error_reason)s,
        %(error_message)s, %(correlation_id)s)
ON CONFLICT (conversation_id, message_id) DO UPDATE SET
    state = EXCLUDED.state, attempts = EXCLUDED.attempts, next_attempt_at = EXCLUDED.next_attempt_at,
    error_reason = EXCLUDED.error_reason, error_message = EXCLUDED.error_message, updated_at = now()
"""
_TOOL_CALL = """
INSERT INTO chat_tool_calls
    (conversation_id, call_id, turn_id, tool, arguments, permission, mutating, outcome, result, duration_ms,
     correlation_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (conversation_id, call_id) DO NOTHING
"""
_TOOL_CALLS = """
SELECT call_id, turn_id, tool, arguments, permission, mutating, outcome, result, correlation_id
FROM chat_tool_calls WHERE conversation_id = %s ORDER BY created_at, call_id
"""
_RESOURCE = """
INSERT INTO chat_resources (conversation_id, kind, namespace, name, correlation_id) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""
_TOLD = """
SELECT DISTINCT jsonb_array_elements_text(content -> 'meta' -> 'told') AS name FROM messages
WHERE conversation_id = %s AND role = 'assistant' AND content ->> 'final' = 'true' AND turn_id IS DISTINCT FROM %s
  AND jsonb_typeof(content -> 'meta' -> 'told') = 'array'
"""
_CREATED = """
SELECT kind, namespace, name FROM chat_resources WHERE conversation_id = %s AND kind = %s ORDER BY created_at
"""
_USER_TEXTS = "SELECT message_id, content ->> 'text' AS text FROM messages WHERE conversation_id = %s AND role = 'user'"


class TurnLog:
    """Turn states, tool calls and created resources of conversations."""

    def __init__(self, pool: Pool, chat: ChatStateManager) -> None:
        self.pool = pool
        self.chat = chat

    async def get_turn(self, conversation_id: str, message_id: str) -> TurnState | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_GET_TURN, (conversation_id, message_id))).fetchone()
        return TurnState.model_validate(row) if row else None

    async def save_turn(self, turn: TurnState) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_SAVE_TURN, turn.model_dump())

    async def record_tool_call(
        self,
        conversation_id: str,
        *,
        call_id: str,
        turn_id: str,
        tool: str,
        arguments: dict[str, object],
        permission: str,
        mutating: bool,
        outcome: str,
        text: str,
        duration_ms: int,
        correlation_id: str,
    ) -> None:
        """Record one tool call (once per call id)."""
        async with self.pool.connection() as conn:
            await conn.execute(
                _TOOL_CALL,
                (
                    conversation_id,
                    call_id,
                    turn_id,
                    tool,
                    Jsonb(arguments),
                    permission,
                    mutating,
                    outcome,
                    Jsonb({"text": text[:4000]}),
                    duration_ms,
                    correlation_id,
                ),
            )

    async def tool_calls(self, conversation_id: str) -> list[dict[str, object]]:
        async with self.pool.connection() as conn:
            return list(await (await conn.execute(_TOOL_CALLS, (conversation_id,))).fetchall())

    async def record_resource(self, conversation_id: str, ref: ResourceRef, correlation_id: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_RESOURCE, (conversation_id, ref.kind, ref.namespace or "", ref.name, correlation_id))
        await self.chat.invalidate(conversation_id)

    async def told(self, conversation_id: str, except_turn: str) -> set[str]:
        """Names of the resources whose failure an answer of another turn than `except_turn` already told."""
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_TOLD, (conversation_id, except_turn))).fetchall()
        return {str(r["name"]) for r in rows}

    async def created(self, conversation_id: str, kind: str) -> list[ResourceRef]:
        """The resources of `kind` the conversation's confirmed actions created, oldest first."""
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_CREATED, (conversation_id, kind))).fetchall()
        return [ResourceRef(kind=r["kind"], namespace=r["namespace"] or None, name=r["name"]) for r in rows]

    async def user_texts(self, conversation_id: str) -> dict[str, str]:
        """Stored text of every user turn, by message id (to spot a message id reused with other text)."""
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_USER_TEXTS, (conversation_id,))).fetchall()
        return {str(r["message_id"]): str(r["text"]) for r in rows}


def due(turn: TurnState | None, now: datetime) -> bool:
    """True when a turn may be worked on now (never started, or its delay is over)."""
    return turn is None or turn.next_attempt_at is None or turn.next_attempt_at <= now
