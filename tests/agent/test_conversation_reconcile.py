"""The controller's Conversation reconcile: one turn enqueued per unanswered message, by actor name, with an
idempotency key; only the conditions it owns are written, by type, so the worker's turn conditions survive."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonpatch
import kopf
from psycopg.types.json import Jsonb

from agent.conversation.status import replying_status
from controller.api.conversation import TURN_ACTOR, TURN_QUEUE, Conversation, message_digest
from controller.api.kinds import CONVERSATION
from controller.api.labels import CORRELATION_LABEL
from controller.api.policy import load_policy
from controller.core.outcome import Outcome
from controller.messaging.broker import TURNS_QUEUE
from controller.operator.handlers import apply_outcome
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
    """A Conversation whose first `answered` messages were answered as they read now (unless `status` says)."""
    ids = ids or [f"m{i + 1}" for i in range(len(texts))]
    done = [{"id": i, "digest": message_digest(t)} for i, t in list(zip(ids, texts, strict=True))[:answered]]
    status.setdefault("answeredMessages", done)
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


def wire(outcome: Outcome) -> list[dict[str, Any]]:
    """The conditions the reconcile sets by type, as they go on the wire."""
    return [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in outcome.conditions]


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
    conditions = {c["type"]: (c["status"], c["reason"]) for c in wire(outcome)}
    assert conditions == {"Ready": ("True", "Accepted"), "Replying": ("False", "Idle")}


async def test_duplicate_ids_are_rejected_and_nothing_is_enqueued_until_fixed() -> None:
    d, dispatcher = deps()
    bad = body("a", "b", ids=["m1", "m1"])
    outcome = await reconcile_conversation(CONVERSATION, bad, d, NOW)
    invalid = next(c for c in wire(outcome) if c["type"] == "InvalidSpec")
    assert "duplicate message id 'm1'" in invalid["message"] and dispatcher.sent == []
    assert "conditions" not in outcome.status  # never the whole list
    fixed = body("a", "b", conditions=wire(outcome))
    outcome = await reconcile_conversation(CONVERSATION, fixed, d, NOW)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in wire(outcome)}
    assert conditions["InvalidSpec"] == ("False", "SpecValid") and conditions["Ready"] == ("True", "Accepted")
    assert len(dispatcher.sent) == 2


async def test_the_controller_leaves_reused_message_ids_to_the_agent_and_never_reads_its_table(
    db_pool: Pool,
) -> None:
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
    assert outcome.conditions == () and outcome.events == () and outcome.audits == ()
    assert [s["message_id"] for s in dispatcher.sent] == ["m2"]


async def test_a_spec_fixed_while_a_turn_is_answered_keeps_both_writers_conditions() -> None:
    d, _ = deps()
    rejected = await reconcile_conversation(CONVERSATION, body("a", "b", ids=["m1", "m1"]), d, NOW)
    # The controller reads the fixed spec while InvalidSpec is still True...
    read = body("a", "b", conditions=wire(rejected))
    read["metadata"]["resourceVersion"] = "7"
    outcome = await reconcile_conversation(CONVERSATION, read, d, NOW + timedelta(seconds=1))
    # ...and before its write lands, the worker marks the turn Replying (under its own resourceVersion check).
    server = copy.deepcopy(read)
    worker_status = replying_status(Conversation.from_body(server), "m1", NOW + timedelta(seconds=2))
    assert worker_status is not None
    server["status"].update(worker_status)
    # Kopf applies the outcome: the status keys by merge patch, the conditions as a JSON patch on the fresh object.
    patch = kopf.Patch(body=kopf.Body(read))
    await apply_outcome(CONVERSATION, kopf.Body(read), patch, d, outcome)
    assert "conditions" not in patch.get("status", {})
    written = jsonpatch.apply_patch(server, patch.as_json_patch(server))
    conditions = {c["type"]: (c["status"], c["reason"]) for c in written["status"]["conditions"]}
    assert conditions == {
        "InvalidSpec": ("False", "SpecValid"),
        "Ready": ("True", "Accepted"),
        "Replying": ("True", "Thinking"),
    }


async def test_without_a_broker_nothing_is_enqueued_and_nothing_fails() -> None:
    d, _ = deps()
    d.dispatcher = None
    outcome = await reconcile_conversation(CONVERSATION, body("a"), d, NOW)
    assert outcome.status["observedGeneration"] == 4


def summary(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"id": i, "digest": message_digest(t)} for i, t in pairs]


async def test_answers_are_tracked_by_id_so_a_removed_message_hides_no_new_one() -> None:
    d, dispatcher = deps()
    # m1..m3 were answered, then m2 was deleted and m4 appended: the position count (3) would skip m4.
    answered = summary(("m1", "a"), ("m2", "b"), ("m3", "c"))
    outcome = await reconcile_conversation(
        CONVERSATION, body("a", "c", "d", ids=["m1", "m3", "m4"], answered=3, answeredMessages=answered), d, NOW
    )
    assert [s["message_id"] for s in dispatcher.sent] == ["m4"]
    [edited] = [c for c in wire(outcome) if c["type"] == "MessagesEdited"]
    assert (edited["status"], edited["reason"]) == ("True", "MessageRemoved")
    assert "m2 removed from spec.messages" in edited["message"]
    [event] = outcome.events
    assert (event.reason, event.type) == ("MessageRemoved", "Warning") and "m2" in event.message


async def test_a_rewritten_answered_message_is_named_and_not_answered_again() -> None:
    d, dispatcher = deps()
    answered = summary(("m1", "what is the status of web?"))
    outcome = await reconcile_conversation(
        CONVERSATION, body("deploy web 9.9.9 to ring 4", answered=1, answeredMessages=answered), d, NOW
    )
    assert dispatcher.sent == []
    [edited] = [c for c in wire(outcome) if c["type"] == "MessagesEdited"]
    assert edited["reason"] == "MessageRewritten" and "m1 rewritten" in edited["message"]
    assert "send a new message id" in edited["message"]


async def test_the_edited_condition_is_written_once_and_cleared_when_the_messages_are_back() -> None:
    d, _ = deps()
    answered = summary(("m1", "a"), ("m2", "b"))
    first = await reconcile_conversation(CONVERSATION, body("a", answered=1, answeredMessages=answered), d, NOW)
    again = await reconcile_conversation(
        CONVERSATION, body("a", answered=1, answeredMessages=answered, conditions=wire(first)), d, NOW
    )
    assert again.conditions == () and again.events == ()  # nothing new to say: no second Event
    back = await reconcile_conversation(
        CONVERSATION, body("a", "b", answered=2, answeredMessages=answered, conditions=wire(first)), d, NOW
    )
    [cleared] = wire(back)
    assert (cleared["type"], cleared["status"], cleared["reason"]) == ("MessagesEdited", "False", "MessagesIntact")
    assert back.events == ()


async def test_a_long_list_of_removed_ids_is_named_in_part() -> None:
    d, _ = deps()
    answered = summary(*((f"m{i}", "x") for i in range(1, 16)))
    outcome = await reconcile_conversation(CONVERSATION, body("x", answered=1, answeredMessages=answered), d, NOW)
    [edited] = wire(outcome)
    assert "m2, m3" in edited["message"] and "m11 and 4 more removed" in edited["message"]
