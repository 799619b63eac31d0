"""Fault suite: a chat turn survives `kill -9` of the worker or of the controller in its middle.

The model (a local fake of the Anthropic API) holds its second answer, so the kill lands while the turn
runs. The turn then ends once: one final reply, the tool called once, the first model round not asked
again, and the message that started it is not lost.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import yaml

from tests.agent.fakes import FakeMessagesAPI, anthropic_text, anthropic_tool
from tests.fixtures.stack import Stack, wait_for

pytestmark = pytest.mark.e2e
NS = "faults-chat"


@pytest.fixture(scope="module")
def namespace(stack: Stack) -> str:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    stack.kubectl("apply", "-f", "-", stdin=json.dumps(body))
    return NS


@pytest.fixture
def model(stack: Stack) -> Iterator[FakeMessagesAPI]:
    """The worker restarted with a local fake of the Anthropic API for conversations that ask for it."""
    extra = {
        "RINGPILOT_ANTHROPIC_API_KEY": "e2e-key",
        "RINGPILOT_LLM_PROVIDER": "offline",
        "RINGPILOT_LLM_MAX_RETRIES": "0",
    }
    with FakeMessagesAPI() as fake:
        stack.env.update(extra, RINGPILOT_ANTHROPIC_BASE_URL=fake.url)
        stack.restart_worker()
        try:
            yield fake
        finally:
            for key in [*extra, "RINGPILOT_ANTHROPIC_BASE_URL"]:
                stack.env.pop(key, None)
            stack.restart_worker()


def rows(stack: Stack, query: str, uid: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.database_url) as conn:
        return list(conn.execute(query, (uid,)).fetchall())


@pytest.mark.parametrize("process", ["worker", "controller"])
def test_kill_9_in_the_middle_of_a_chat_turn_still_answers_once(
    stack: Stack, namespace: str, model: FakeMessagesAPI, process: str
) -> None:
    held = anthropic_text("never delivered" if process == "worker" else "Lab runs 1.4.1.")
    held.delay_seconds = 30 if process == "worker" else 4
    answers = [anthropic_tool("query_deployments", {"ring": 0}), held]
    if process == "worker":
        answers.append(anthropic_text("Lab runs 1.4.1."))
    model.add(*answers)
    name = f"killed-{process}"
    doc = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "Conversation",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "user": "dev-viewer",
            "messages": [{"id": "m1", "text": "what runs in the lab?"}],
            "llm": {"provider": "anthropic", "model": "claude-e2e"},
        },
    }
    stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), user="dev-viewer")
    wait_for(lambda: len(model.requests) >= 2, 30, what="the turn to wait on the model's second answer")
    if process == "worker":
        stack.restart_worker(signal.SIGKILL)
    else:
        stack.restart_controller(signal.SIGKILL)

    def replied() -> dict[str, Any] | None:
        obj = stack.get("conversations", name, NS)
        return obj if (obj.get("status") or {}).get("reply") == "Lab runs 1.4.1." else None

    obj = wait_for(replied, 90, what=f"Conversation {name} to answer")
    uid = obj["metadata"]["uid"]
    finals = rows(
        stack, "SELECT turn_id FROM messages WHERE conversation_id = %s AND content ->> 'final' = 'true'", uid
    )
    assert finals == [("m1",)]
    calls = rows(stack, "SELECT count(*) FROM chat_tool_calls WHERE conversation_id = %s", uid)
    assert calls == [(1,)]
    assert len(model.requests) == (3 if process == "worker" else 2)  # no model round was asked twice
    user = rows(stack, "SELECT message_id FROM messages WHERE conversation_id = %s AND role = 'user'", uid)
    assert user == [("m1",)]
