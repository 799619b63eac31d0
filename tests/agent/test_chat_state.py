"""ChatStateManager: PostgreSQL as the system of record, Redis as a write-through cache of the context.

Shows that the context is the last messages plus role, permissions, in-flight work and recent
errors; that the cache is filled, written through and expires; that it never serves a context
without the latest message; and that with Redis stopped everything is answered from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis.asyncio
from psycopg.types.json import Jsonb

from agent.chat.models import ConversationMessage, TurnState
from agent.chat.state import KEY_PREFIX, ChatStateManager, ConversationNotFound
from agent.chat.turnlog import TurnLog, due
from controller.api.conversation import ResourceRef
from controller.api.policy import load_policy
from controller.devkit.embedded import EmbeddedRedis
from controller.storage.cache import redis_client
from controller.storage.db import Pool, open_pool


def user(text: str, message_id: str | None = None) -> ConversationMessage:
    return ConversationMessage(
        role="user", content={"text": text}, message_id=message_id, turn_id=message_id, correlation_id="corr-1"
    )


@pytest.fixture
def chat(db_pool: Pool, redis_async: redis.asyncio.Redis) -> ChatStateManager:
    return ChatStateManager(db_pool, redis_async, load_policy(), ttl_seconds=300, window=10)


async def test_create_conversation_is_idempotent_and_returns_the_session(chat: ChatStateManager) -> None:
    first = await chat.create_conversation("dev-publisher", "corr-1", conversation_id="c1", namespace="ns", name="n")
    again = await chat.create_conversation("someone-else", "corr-2", conversation_id="c1")
    assert first == again
    assert (first.user_id, first.correlation_id, first.namespace) == ("dev-publisher", "corr-1", "ns")
    generated = await chat.create_conversation("dev-viewer", "corr-3")
    assert len(generated.id) == 36 and await chat.get_session(generated.id) == generated
    assert await chat.get_session("missing") is None


async def test_messages_are_numbered_and_a_reused_id_overwrites_nothing(chat: ChatStateManager) -> None:
    await chat.create_conversation("dev-viewer", "corr-1", conversation_id="c1")
    one = await chat.add_message("c1", user("hello", "m1"))
    two = await chat.add_message("c1", user("again", "m2"))
    assert (one.seq, two.seq, one.existed) == (1, 2, False)
    reused = await chat.add_message("c1", user("changed text", "m1"))
    assert (reused.existed, reused.seq, reused.text) == (True, 1, "hello")
    assert (await chat.get_message("c1", "m1")).text == "hello"  # type: ignore[union-attr]
    with pytest.raises(ConversationNotFound):
        await chat.add_message("nope", user("x"))


async def test_concurrent_writers_get_distinct_positions(chat: ChatStateManager) -> None:
    await chat.create_conversation("dev-viewer", "corr-1", conversation_id="c1")
    stored = await asyncio.gather(*(chat.add_message("c1", user(f"t{i}")) for i in range(8)))
    assert sorted(m.seq for m in stored) == list(range(1, 9))


async def test_the_context_holds_the_last_ten_messages_role_permissions_tasks_and_errors(
    chat: ChatStateManager, db_pool: Pool
) -> None:
    await chat.create_conversation("dev-publisher", "corr-1", conversation_id="c1")
    for i in range(15):
        await chat.add_message("c1", user(f"message {i}", f"m{i}"))
    turnlog = TurnLog(db_pool, chat)
    await turnlog.record_resource(
        "c1", ResourceRef(kind="DeploymentTask", name="web-1-4-2-abc", namespace="default"), "corr-1"
    )
    await turnlog.save_turn(
        TurnState(
            conversation_id="c1",
            message_id="m3",
            state="failed",
            attempts=1,
            error_reason="ProviderRejected",
            error_message="bad",
            correlation_id="corr-1",
        )
    )
    await turnlog.record_tool_call(
        "c1",
        call_id="m4/x",
        turn_id="m4",
        tool="deploy",
        arguments={"app": "web"},
        permission="deploy",
        mutating=True,
        outcome="denied",
        text="Permission denied",
        duration_ms=1,
        correlation_id="corr-1",
    )
    await chat.add_message("c1", user("latest", "m15"))
    context = await chat.get_context("c1")
    assert context.source == "postgresql" and len(context.messages) == 10
    assert [m.text for m in context.messages][-2:] == ["message 14", "latest"]
    assert (context.role, context.user_id, context.correlation_id) == ("publisher", "dev-publisher", "corr-1")
    assert "deploy" in context.permissions and "approve" not in context.permissions
    assert [r.name for r in context.in_flight] == ["web-1-4-2-abc"]
    assert {e.source for e in context.recent_errors} == {"turn", "tool deploy"}
    cached = await chat.get_context("c1")
    assert cached.source == "redis" and cached.model_dump(exclude={"source"}) == context.model_dump(exclude={"source"})
    with pytest.raises(ConversationNotFound):
        await chat.get_context("unknown")


async def test_write_through_keeps_the_cache_current_with_a_five_minute_ttl(
    chat: ChatStateManager, redis_async: redis.asyncio.Redis
) -> None:
    await chat.create_conversation("dev-viewer", "corr-1", conversation_id="c1")
    await chat.add_message("c1", user("first", "m1"))
    assert (await chat.get_context("c1")).source == "postgresql"
    await chat.add_message("c1", user("second", "m2"))
    context = await chat.get_context("c1")
    assert context.source == "redis" and [m.text for m in context.messages] == ["first", "second"]
    ttl = await redis_async.ttl(f"{KEY_PREFIX}c1:msgs")
    assert 290 < ttl <= 300


async def test_the_cache_never_serves_a_context_without_the_latest_message(
    chat: ChatStateManager, db_pool: Pool, redis_async: redis.asyncio.Redis
) -> None:
    await chat.create_conversation("dev-viewer", "corr-1", conversation_id="c1")
    await chat.add_message("c1", user("one", "m1"))
    assert (await chat.get_context("c1")).source == "postgresql"  # cache filled
    # A write whose cache update was lost (Redis unreachable at that moment): only PostgreSQL has it.
    async with db_pool.connection() as conn:
        await conn.execute(
            "INSERT INTO messages (conversation_id, seq, message_id, role, content) VALUES ('c1', 2, 'm2', 'user', %s)",
            (Jsonb({"text": "two"}),),
        )
    context = await chat.get_context("c1")
    assert (context.source, context.messages[-1].text) == ("postgresql", "two")
    # A gap in the cache (a message missing before the new one) drops the entry instead of appending.
    await redis_async.hset(f"{KEY_PREFIX}c1:meta", "last_seq", 1)
    await chat.add_message("c1", user("three", "m3"))
    assert await redis_async.exists(f"{KEY_PREFIX}c1:meta") == 0
    context = await chat.get_context("c1")
    assert (context.source, [m.text for m in context.messages]) == ("postgresql", ["one", "two", "three"])
    for i in range(4, 30):
        await chat.add_message("c1", user(f"n{i}", f"m{i}"))
        latest = await chat.get_context("c1")
        assert latest.messages[-1].text == f"n{i}" and latest.last_seq == i
        assert latest.source == "redis"


async def test_with_postgresql_down_a_current_cache_still_answers(
    chat: ChatStateManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    await chat.create_conversation("dev-viewer", "corr-1", conversation_id="c1")
    await chat.add_message("c1", user("one", "m1"))
    await chat.get_context("c1")

    async def down(conversation_id: str) -> int:
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(chat, "head", down)
    assert (await chat.get_context("c1")).source == "redis"


@pytest.fixture
def private_redis() -> Iterator[EmbeddedRedis]:
    home = Path(tempfile.mkdtemp(prefix="ringpilot-agent-redis-"))
    server = EmbeddedRedis(home / "redis", 0, durable=False, die_with_parent=True)
    server.start(20)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


async def test_with_redis_stopped_everything_comes_from_postgresql_and_nothing_is_lost(
    database_url: str, private_redis: EmbeddedRedis
) -> None:
    pool = await open_pool(database_url, min_size=1, max_size=4)
    client: Any = redis_client(private_redis.url, socket_timeout_seconds=0.5)
    chat = ChatStateManager(pool, client, load_policy())
    try:
        await chat.create_conversation("dev-viewer", "corr-1", conversation_id="c1")
        await chat.add_message("c1", user("before", "m1"))
        assert (await chat.get_context("c1")).source == "postgresql"
        assert (await chat.get_context("c1")).source == "redis"
        private_redis.stop()
        await chat.add_message("c1", user("while down", "m2"))
        await chat.invalidate("c1")
        context = await chat.get_context("c1")
        assert (context.source, [m.text for m in context.messages]) == ("postgresql", ["before", "while down"])
        restarted = ChatStateManager(await open_pool(database_url, min_size=1, max_size=2), None, load_policy())
        assert [m.text for m in (await restarted.get_context("c1")).messages] == ["before", "while down"]
        await restarted.pool.close()
    finally:
        await client.aclose()
        await pool.close()


def test_a_turn_is_due_when_new_or_when_its_delay_is_over() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    turn = TurnState(
        conversation_id="c",
        message_id="m",
        state="delayed",
        correlation_id="x",
        next_attempt_at=now + timedelta(seconds=5),
    )
    assert due(None, now) and not due(turn, now) and due(turn, now + timedelta(seconds=6))
