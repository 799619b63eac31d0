"""The controller's Conversation reconcile: one turn enqueued per unanswered message, by actor name, with an
idempotency key; only the conditions it owns are written; a reused message id is named in a condition."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from controller.api.conversation import TURN_ACTOR, TURN_QUEUE
from controller.api.kinds import CONVERSATION
from controller.api.labels import CORRELATION_LABEL
from controller.api.policy import load_policy
from controller.messaging.broker import TURNS_QUEUE
from controller.reconcile.conversations import reconcile_conversation
from controller.reconcile.deps import Deps
from controller.settings import ControllerSettings
from controller.storage.db import Pool

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@dataclass
class RecordingDispatcher:
    sent: list[dict[str, Any]] = field(default_factory=list)

    def enqueue(
        self,
        actor_name: str,
        queue: str,
        *,
        key: str,
        correlation_id: str,
        kwargs: dict[str, Any],
        delay_ms: int | None = None,
    ) -> None:
        self.sent.append({"actor": actor_name, "queue": queue, "key": key, "correlation_id": correlation_id, **kwargs})


def deps(pool: Pool | None = None) -> tuple[Deps, RecordingDispatcher]:
    dispatcher = RecordingDispatcher()
    return Deps(settings=ControllerSettings(), policy=load_policy(), pool=pool, dispatcher=dispatcher), dispatcher  # type: ignore[arg-type]


def body(*texts: str, answered: int = 0, ids: list[str] | None = None, **status: Any) -> dict[str, Any]:
    ids = ids or [f"m{i + 1}" for i in range(len(texts))]
    return {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "Conversation",
        "metadata": {"name": "chat", "namespace": "team", "uid": "u-1", "generation": 4, "labels": {}},
        "spec": {
            "user": "dev-publisher",
            "correlationId": "corr-9",
            "messages": [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)],
        },
        "status": {"answered": answered, **status},
    }


def test_the_turn_queue_is_the_brokers() -> None:
    assert TURN_QUEUE == TURNS_QUEUE and TURN_ACTOR == "answer_turn"


async def test_each_unanswered_message_is_enqueued_once_by_key() -> None:
    d, dispatcher = deps()
    outcome = await reconcile_conversation(CONVERSATION, body("a", "b", "c", answered=1), d, NOW)
    assert dispatcher.sent == [
        {
            "actor": "answer_turn",
            "queue": "turns",
            "key": f"turn/u-1/{m}",
            "correlation_id": "corr-9",
            "namespace": "team",
            "name": "chat",
            "uid": "u-1",
            "message_id": m,
        }
        for m in ("m2", "m3")
    ]
    assert outcome.labels == {CORRELATION_LABEL: "corr-9"}
    assert outcome.status == {"observedGeneration": 4, "correlationId": "corr-9"}  # turn conditions: the worker's
    dispatcher.sent.clear()
    await reconcile_conversation(CONVERSATION, body("a", answered=1), d, NOW)
    assert dispatcher.sent == []


async def test_an_empty_conversation_is_ready_and_idle() -> None:
    d, _ = deps()
    outcome = await reconcile_conversation(CONVERSATION, body(), d, NOW)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in outcome.status["conditions"]}
    assert conditions == {"Ready": ("True", "Accepted"), "Replying": ("False", "Idle")}


async def test_duplicate_ids_are_rejected_and_nothing_is_enqueued_until_fixed() -> None:
    d, dispatcher = deps()
    bad = body("a", "b", ids=["m1", "m1"])
    outcome = await reconcile_conversation(CONVERSATION, bad, d, NOW)
    invalid = next(c for c in outcome.status["conditions"] if c["type"] == "InvalidSpec")
    assert "duplicate message id 'm1'" in invalid["message"] and dispatcher.sent == []
    fixed = body("a", "b", conditions=outcome.status["conditions"])
    outcome = await reconcile_conversation(CONVERSATION, fixed, d, NOW)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in outcome.status["conditions"]}
    assert conditions["InvalidSpec"] == ("False", "SpecValid") and conditions["Ready"] == ("True", "Accepted")
    assert len(dispatcher.sent) == 2


async def test_a_message_id_reused_with_other_text_is_named_and_nothing_is_overwritten(db_pool: Pool) -> None:
    async with db_pool.connection() as conn:
        await conn.execute(
            "INSERT INTO conversations (id, namespace, name, user_id, correlation_id) "
            "VALUES ('u-1', 'team', 'chat', 'dev-publisher', 'corr-9')"
        )
        await conn.execute(
            "INSERT INTO messages (conversation_id, seq, message_id, role, content) "
            "VALUES ('u-1', 1, 'm1', 'user', %s)",
            (Jsonb({"text": "original"}),),
        )
    d, dispatcher = deps(db_pool)
    outcome = await reconcile_conversation(CONVERSATION, body("edited", "new", answered=1), d, NOW)
    conflict = next(c for c in outcome.status["conditions"] if c["type"] == "MessageConflict")
    assert (conflict["status"], conflict["reason"]) == ("True", "MessageIdReused") and "m1" in conflict["message"]
    assert [e.reason for e in outcome.events] == ["MessageConflict"]
    assert [a.action for a in outcome.audits] == ["MessageConflict"]
    assert [s["message_id"] for s in dispatcher.sent] == ["m2"]
    async with db_pool.connection() as conn:
        row = await (await conn.execute("SELECT content FROM messages WHERE message_id = 'm1'")).fetchone()
    assert row is not None and row["content"] == {"text": "original"}
    restored = body("original", "new", answered=1, conditions=outcome.status["conditions"])
    outcome = await reconcile_conversation(CONVERSATION, restored, d, NOW)
    conflict = next(c for c in outcome.status["conditions"] if c["type"] == "MessageConflict")
    assert conflict["status"] == "False" and outcome.events == ()


async def test_without_a_broker_nothing_is_enqueued_and_nothing_fails() -> None:
    d, _ = deps()
    d.dispatcher = None
    outcome = await reconcile_conversation(CONVERSATION, body("a"), d, NOW)
    assert outcome.status["observedGeneration"] == 4
