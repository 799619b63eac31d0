"""`ChatStateManager`: conversations and their history, PostgreSQL first, Redis as the hot cache.

PostgreSQL is the system of record. Redis holds each active conversation's context (last messages
and the notes around them) for `ttl_seconds`, written through on every `add_message` by a script
that appends only when the cache holds every earlier message (otherwise it drops the entry). A
cached context is served only when its last message is PostgreSQL's latest for the conversation,
so the cache never answers without the latest message; with Redis down everything comes from
PostgreSQL and nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb
from redis.exceptions import RedisError

from agent.chat.models import (
    ConversationContext,
    ConversationMessage,
    ConversationSession,
    ErrorNote,
    ResourceNote,
    StoredMessage,
)
from controller.api.policy import Policy
from controller.storage.db import Pool

logger = logging.getLogger(__name__)

KEY_PREFIX = "ringpilot:chat:"
_CREATE = """
INSERT INTO conversations (id, namespace, name, user_id, correlation_id) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (id) DO NOTHING
"""
_SESSION = "SELECT id, namespace, name, user_id, correlation_id, created_at FROM conversations WHERE id = %s"
_INSERT = """
INSERT INTO messages (conversation_id, seq, message_id, role, content, correlation_id, turn_id)
SELECT %(cid)s, coalesce(max(seq), 0) + 1, %(message_id)s, %(role)s, %(content)s, %(correlation_id)s, %(turn_id)s
FROM messages WHERE conversation_id = %(cid)s
ON CONFLICT (conversation_id, message_id) WHERE message_id IS NOT NULL DO NOTHING
RETURNING seq, created_at
"""
_COLUMNS = "seq, message_id, role, content, correlation_id, turn_id, created_at"
_BY_ID = f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = %s AND message_id = %s"
_TURN = f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = %s AND turn_id = %s ORDER BY seq"
_HEAD = "SELECT seq FROM messages WHERE conversation_id = %s ORDER BY seq DESC LIMIT 1"
_CONTEXT = """
SELECT c.user_id, c.correlation_id,
  (SELECT coalesce(json_agg(m ORDER BY m.seq), '[]') FROM (
     SELECT seq, message_id, role, content, correlation_id, turn_id, created_at FROM messages
     WHERE conversation_id = c.id ORDER BY seq DESC LIMIT %(window)s) m) AS messages,
  (SELECT coalesce(json_agg(r), '[]') FROM (
     SELECT kind, namespace, name, created_at FROM chat_resources
     WHERE conversation_id = c.id ORDER BY created_at DESC LIMIT 5) r) AS resources,
  (SELECT coalesce(json_agg(e), '[]') FROM (
     SELECT updated_at AS at, 'turn' AS source, error_reason || ': ' || coalesce(error_message, '') AS message
     FROM chat_turns WHERE conversation_id = c.id AND error_reason IS NOT NULL
     UNION ALL
     SELECT created_at, 'tool ' || tool, coalesce(result ->> 'text', outcome) FROM chat_tool_calls
     WHERE conversation_id = c.id AND outcome IN ('error', 'denied')
     ORDER BY 1 DESC LIMIT 5) e) AS errors
FROM conversations c WHERE c.id = %(cid)s
"""
# KEYS: messages list, meta hash. ARGV: seq, message JSON, window, ttl. Appends only onto seq - 1.
_APPEND = """
local last = redis.call('HGET', KEYS[2], 'last_seq')
if not last then return 0 end
last = tonumber(last)
local seq = tonumber(ARGV[1])
if last >= seq then return 1 end
if last ~= seq - 1 then redis.call('DEL', KEYS[1], KEYS[2]) return -1 end
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[3]), -1)
redis.call('HSET', KEYS[2], 'last_seq', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 2
"""


class ConversationNotFound(LookupError):
    """No conversation has that id."""


def _keys(conversation_id: str) -> tuple[str, str]:
    return f"{KEY_PREFIX}{conversation_id}:msgs", f"{KEY_PREFIX}{conversation_id}:meta"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ChatStateManager:
    """Sessions, messages and contexts (see the module docstring)."""

    def __init__(
        self, pool: Pool, redis: Any = None, policy: Policy | None = None, *, ttl_seconds: int = 300, window: int = 10
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.policy = policy
        self.ttl_seconds = ttl_seconds
        self.window = window

    async def create_conversation(
        self,
        user_id: str,
        correlation_id: str,
        *,
        conversation_id: str | None = None,
        namespace: str = "",
        name: str = "",
    ) -> ConversationSession:
        """Create a conversation (idempotent for a given id); returns it as stored."""
        import uuid

        cid = conversation_id or str(uuid.uuid4())
        async with self.pool.connection() as conn:
            await conn.execute(_CREATE, (cid, namespace, name, user_id, correlation_id))
            row = await (await conn.execute(_SESSION, (cid,))).fetchone()
        assert row is not None
        return ConversationSession.model_validate(row)

    async def get_session(self, conversation_id: str) -> ConversationSession | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_SESSION, (conversation_id,))).fetchone()
        return ConversationSession.model_validate(row) if row else None

    async def add_message(self, conversation_id: str, message: ConversationMessage) -> StoredMessage:
        """Store a message at the end of the history and write it through to the cache.

        A message whose `message_id` is already stored is not stored again: the stored one is returned
        with `existed=True` (its content is never overwritten).
        """
        params = {
            "cid": conversation_id,
            "message_id": message.message_id,
            "role": message.role,
            "content": Jsonb(message.content),
            "correlation_id": message.correlation_id,
            "turn_id": message.turn_id,
        }
        for attempt in range(5):
            try:
                async with self.pool.connection() as conn:
                    row = await (await conn.execute(_INSERT, params)).fetchone()
                    if row is None:
                        existing = await (await conn.execute(_BY_ID, (conversation_id, message.message_id))).fetchone()
                        assert existing is not None
                        return StoredMessage.model_validate({**existing, "existed": True})
                break
            except psycopg.errors.UniqueViolation:  # two writers took the same seq; take the next one
                if attempt == 4:
                    raise
            except psycopg.errors.ForeignKeyViolation as error:
                raise ConversationNotFound(conversation_id) from error
        assert row is not None
        stored = StoredMessage.model_validate({**message.model_dump(), **row})
        await self._write_through(conversation_id, stored)
        return stored

    async def _write_through(self, conversation_id: str, stored: StoredMessage) -> None:
        if self.redis is None:
            return
        msgs, meta = _keys(conversation_id)
        try:
            await self.redis.eval(
                _APPEND,
                2,
                msgs,
                meta,
                str(stored.seq),
                stored.model_dump_json(),
                str(self.window),
                str(self.ttl_seconds),
            )
        except (RedisError, OSError) as error:
            logger.warning("Context cache of conversation %r not updated: %s", conversation_id, type(error).__name__)

    async def invalidate(self, conversation_id: str) -> None:
        """Drop the cached context (after writes other than messages); best effort."""
        if self.redis is None:
            return
        try:
            await self.redis.delete(*_keys(conversation_id))
        except (RedisError, OSError) as error:
            logger.warning("Context cache of conversation %r not dropped: %s", conversation_id, type(error).__name__)

    async def turn_messages(self, conversation_id: str, turn_id: str) -> list[StoredMessage]:
        """Every assistant and tool message of one user turn, in order (what a retried turn resumes from)."""
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_TURN, (conversation_id, turn_id))).fetchall()
        return [StoredMessage.model_validate(r) for r in rows]

    async def get_message(self, conversation_id: str, message_id: str) -> StoredMessage | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_BY_ID, (conversation_id, message_id))).fetchone()
        return StoredMessage.model_validate(row) if row else None

    async def head(self, conversation_id: str) -> int:
        """The seq of the conversation's latest message in PostgreSQL (0 when it has none)."""
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_HEAD, (conversation_id,))).fetchone()
        return int(row["seq"]) if row else 0

    def _access(self, user_id: str) -> tuple[str, list[str]]:
        if self.policy is None:
            return "viewer", ["read"]
        role = self.policy.role_for(user_id)
        return role.value, sorted(p.value for p in self.policy.permissions_for(user_id))

    async def _cached(self, conversation_id: str) -> dict[str, Any] | None:
        if self.redis is None:
            return None
        msgs, meta = _keys(conversation_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.lrange(msgs, 0, -1)
                pipe.hgetall(meta)
                items, fields = await pipe.execute()
        except (RedisError, OSError) as error:
            logger.debug("Context cache unreadable: %s", type(error).__name__)
            return None
        if not fields:
            return None
        data = {_text(k): _text(v) for k, v in fields.items()}
        return {
            "user_id": data["user_id"],
            "correlation_id": data["correlation_id"],
            "last_seq": int(data["last_seq"]),
            "messages": [json.loads(_text(i)) for i in items],
            "resources": json.loads(data["resources"]),
            "errors": json.loads(data["errors"]),
        }

    async def _fill(self, conversation_id: str, data: dict[str, Any], last_seq: int) -> None:
        if self.redis is None:
            return
        msgs, meta = _keys(conversation_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(msgs, meta)
                if data["messages"]:
                    pipe.rpush(msgs, *(StoredMessage.model_validate(m).model_dump_json() for m in data["messages"]))
                pipe.hset(
                    meta,
                    mapping={
                        "last_seq": last_seq,
                        "user_id": data["user_id"],
                        "correlation_id": data["correlation_id"],
                        "resources": json.dumps(data["resources"], default=str),
                        "errors": json.dumps(data["errors"], default=str),
                    },
                )
                pipe.expire(msgs, self.ttl_seconds)
                pipe.expire(meta, self.ttl_seconds)
                await pipe.execute()
        except (RedisError, OSError) as error:
            logger.debug("Context cache not filled: %s", type(error).__name__)

    def _context(
        self, conversation_id: str, data: dict[str, Any], last_seq: int, source: Literal["redis", "postgresql"]
    ) -> ConversationContext:
        role, permissions = self._access(data["user_id"])
        return ConversationContext(
            conversation_id=conversation_id,
            user_id=data["user_id"],
            correlation_id=data["correlation_id"],
            role=role,
            permissions=permissions,
            messages=[StoredMessage.model_validate(m) for m in data["messages"]],
            in_flight=[ResourceNote.model_validate(r) for r in data["resources"]],
            recent_errors=[ErrorNote.model_validate(e) for e in data["errors"]],
            last_seq=last_seq,
            source=source,
        )

    async def get_context(self, conversation_id: str) -> ConversationContext:
        """The context of a conversation (see the module docstring for where it comes from)."""
        if self.redis is not None:
            cached, head = await asyncio.gather(
                self._cached(conversation_id), self.head(conversation_id), return_exceptions=True
            )
            if isinstance(cached, dict):
                if isinstance(head, psycopg.OperationalError):
                    head = cached["last_seq"]  # PostgreSQL down: nothing newer can have been written either
                elif isinstance(head, BaseException):
                    raise head
                if cached["last_seq"] == head:
                    return self._context(conversation_id, cached, head, "redis")
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_CONTEXT, {"cid": conversation_id, "window": self.window})).fetchone()
        if row is None:
            raise ConversationNotFound(conversation_id)
        data = dict(row)
        last_seq = max((int(m["seq"]) for m in data["messages"]), default=0)
        await self._fill(conversation_id, data, last_seq)
        return self._context(conversation_id, data, last_seq, "postgresql")
