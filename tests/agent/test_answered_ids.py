"""The answered-message summary the worker keeps in status: by id, bounded, never dropping a message in the spec."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.conversation.engine import TurnResult
from agent.conversation.status import answered_status, answered_summary, unanswered
from controller.api.conversation import MAX_MESSAGES, ChatMessage, Conversation, message_digest

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def conversation(ids: list[str], answered: list[str]) -> Conversation:
    body: dict[str, Any] = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "Conversation",
        "metadata": {"name": "c", "namespace": "default", "uid": "u", "generation": 1},
        "spec": {"user": "dev-viewer", "messages": [{"id": i, "text": f"text {i}"} for i in ids]},
        "status": {"answeredMessages": [{"id": i, "digest": message_digest(f"text {i}")} for i in answered]},
    }
    return Conversation.from_body(body)


def test_the_next_message_is_the_first_whose_id_was_not_answered() -> None:
    chat = conversation(["m1", "m3", "m4"], ["m1", "m2", "m3"])
    assert [m.id for m in unanswered(chat)] == ["m4"]


def test_an_answer_counts_the_messages_in_the_spec_and_is_written_once() -> None:
    chat = conversation(["m1", "m3", "m4"], ["m1", "m2", "m3"])
    status = answered_status(chat, chat.spec.messages[2], TurnResult(reply="ok"), "corr", NOW)
    assert status is not None
    assert status["answered"] == 3 and status["lastAnsweredId"] == "m4"
    assert [a["id"] for a in status["answeredMessages"]] == ["m1", "m2", "m3", "m4"]
    done = conversation(["m1", "m3", "m4"], ["m1", "m2", "m3", "m4"])
    assert answered_status(done, done.spec.messages[2], TurnResult(reply="again"), "corr", NOW) is None


def test_the_summary_drops_the_oldest_removed_ids_first_and_never_one_in_the_spec() -> None:
    removed = [f"old{i}" for i in range(MAX_MESSAGES - 1)]
    chat = conversation(["m1", "m2"], [*removed, "m1"])  # full: 199 removed ids and m1
    summary = answered_summary(chat, ChatMessage(id="m2", text="text m2"))
    ids = [a.id for a in summary]
    assert len(ids) == MAX_MESSAGES
    assert ids[-2:] == ["m1", "m2"] and "old0" not in ids and "old1" in ids
