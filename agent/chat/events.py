"""A conversation's streamed events: rows in PostgreSQL with a per-conversation seq, announced over Redis.

`EventLog.emit` inserts one row into `chat_events` (its `seq` is the conversation's next number and the
SSE event id) under an `event_key` naming the event within its turn, so a retried turn writes each
event once. After the row is committed it publishes `{"conversation": uid, "seq": n}` on the
conversation's Redis channel; publishing is best effort, because the gateway replays from PostgreSQL
(`after`) and falls back to polling it, so a lost announcement delays an event and never loses it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Final, Literal

import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict
from redis.exceptions import RedisError

from controller.storage.db import Pool

logger = logging.getLogger(__name__)

#: Prefix of the Redis channel each conversation's events are announced on (the suffix is its uid).
CHANNEL_PREFIX: Final = "ringpilot:chat:events:"
#: The event names of gateway-chart.md §1.3 (`snapshot` is the gateway's own, never stored).
EventName = Literal[
    "turn.started",
    "tool.started",
    "tool.finished",
    "confirmation.required",
    "resource.created",
    "assistant.message",
    "turn.completed",
    "turn.failed",
]

_EMIT = """
INSERT INTO chat_events (conversation_id, seq, event_key, event, data, turn_id, correlation_id)
SELECT %(cid)s, coalesce(max(seq), 0) + 1, %(key)s, %(event)s, %(data)s, %(turn)s, %(correlation)s
FROM chat_events WHERE conversation_id = %(cid)s
ON CONFLICT (conversation_id, event_key) DO NOTHING
RETURNING seq
"""
_AFTER = """
SELECT seq, event, data, created_at FROM chat_events
WHERE conversation_id = %s AND seq > %s ORDER BY seq LIMIT %s
"""
_HEAD = "SELECT coalesce(max(seq), 0) AS seq FROM chat_events WHERE conversation_id = %s"


def channel(conversation_id: str) -> str:
    """The Redis channel of one conversation's announcements."""
    return f"{CHANNEL_PREFIX}{conversation_id}"


class StoredEvent(BaseModel):
    """One event as stored: its seq (the SSE id), name and JSON data."""

    model_config = ConfigDict(frozen=True)

    seq: int
    event: str
    data: dict[str, Any]
    created_at: datetime | None = None


class EventLog:
    """Writes and reads `chat_events` (see the module docstring)."""

    def __init__(self, pool: Pool, redis: Any = None) -> None:
        self.pool = pool
        self.redis = redis

    async def emit(
        self,
        conversation_id: str,
        key: str,
        event: EventName,
        data: dict[str, Any],
        *,
        turn_id: str | None = None,
        correlation_id: str | None = None,
    ) -> int | None:
        """Store the event once under `key` and announce it; its seq, or None when it was already stored."""
        params = {
            "cid": conversation_id,
            "key": key,
            "event": event,
            "data": Jsonb(data),
            "turn": turn_id,
            "correlation": correlation_id,
        }
        row = None
        for attempt in range(5):
            try:
                async with self.pool.connection() as conn:
                    row = await (await conn.execute(_EMIT, params)).fetchone()
                break
            except psycopg.errors.UniqueViolation:  # two writers took the same seq; take the next one
                if attempt == 4:
                    raise
        if row is None:
            return None
        seq = int(row["seq"])
        await self.announce(conversation_id, seq)
        return seq

    async def announce(self, conversation_id: str, seq: int) -> None:
        """Publish `{conversation, seq}` on the conversation's channel; a Redis failure is only logged."""
        if self.redis is None:
            return
        try:
            await self.redis.publish(
                channel(conversation_id), json.dumps({"conversation": conversation_id, "seq": seq})
            )
        except (RedisError, OSError) as error:
            logger.warning("Event %d of conversation %r not announced: %s", seq, conversation_id, type(error).__name__)

    async def after(self, conversation_id: str, seq: int, limit: int = 500) -> list[StoredEvent]:
        """The events after `seq`, oldest first (at most `limit`)."""
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_AFTER, (conversation_id, seq, limit))).fetchall()
        return [StoredEvent.model_validate(r) for r in rows]

    async def head(self, conversation_id: str) -> int:
        """The seq of the conversation's latest event (0 when it has none)."""
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_HEAD, (conversation_id,))).fetchone()
        return int(row["seq"]) if row else 0
