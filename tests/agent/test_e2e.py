"""End to end on the emulator with the real `ringpilot controller` and `ringpilot worker` processes.

A Conversation is applied with kubectl, turns are appended with `kubectl patch`, and replies are read
from its status. Covers the acceptance flow ("deploy web 1.4.2 to ring 1", then "yes"), history
surviving restarts of both processes, and a worker killed in the middle of a turn.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import yaml

from controller.api.labels import CORRELATION_LABEL
from tests.agent.fakes import FakeMessagesAPI, anthropic_text, anthropic_tool
from tests.fixtures.stack import Stack, wait_for

pytestmark = pytest.mark.e2e
NS = "chat-e2e"


@pytest.fixture(scope="module")
def namespace(stack: Stack) -> str:
    stack.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    )
    return NS


def apply(stack: Stack, name: str, user: str, text: str, **spec: Any) -> None:
    doc = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "Conversation",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"user": user, "messages": [{"id": "m1", "text": text}], **spec},
    }
    assert "created" in stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), user=user).stdout


def say(stack: Stack, name: str, message_id: str, text: str) -> None:
    patch = json.dumps([{"op": "add", "path": "/spec/messages/-", "value": {"id": message_id, "text": text}}])
    stack.kubectl("patch", "conversation", name, "-n", NS, "--type", "json", "-p", patch)


def answered(stack: Stack, name: str, count: int, timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        obj = stack.get("conversations", name, NS)
        return obj if (obj.get("status") or {}).get("answered") == count else None

    return wait_for(done, timeout, what=f"Conversation {name} to answer {count} message(s)")


def reply(stack: Stack, name: str) -> str:
    return stack.kubectl("get", "conv", name, "-n", NS, "-o", "jsonpath={.status.reply}").stdout


def test_deploy_then_yes_creates_the_task_with_the_conversations_correlation_id(stack: Stack, namespace: str) -> None:
    apply(stack, "release", "dev-publisher", "deploy web 1.4.2 to ring 1")
    obj = answered(stack, "release", 1)
    assert obj["status"]["pending"]["tool"] == "deploy"
    assert reply(stack, "release").startswith("I can deploy web 1.4.2 to rings 0-1")
    correlation = obj["metadata"]["labels"][CORRELATION_LABEL]
    say(stack, "release", "m2", "yes")
    obj = answered(stack, "release", 2)
    [ref] = obj["status"]["resources"]
    assert reply(stack, "release").startswith(f"Created DeploymentTask {ref['name']}")
    task = stack.get("deploymenttasks", ref["name"], NS)
    stack.custom.patch_namespaced_custom_object(  # keep the shared stack's apps as they were
        "ringpilot.dev", "v1alpha1", NS, "deploymenttasks", ref["name"], {"spec": {"cancel": True}}
    )
    assert task["metadata"]["labels"][CORRELATION_LABEL] == correlation
    assert (task["spec"]["requestedBy"], task["spec"]["correlationId"]) == ("dev-publisher", correlation)
    conditions = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert conditions["Ready"] == "True" and conditions["Replying"] == "False"
    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute(
            "SELECT role, correlation_id FROM messages WHERE conversation_id = %s", (obj["metadata"]["uid"],)
        ).fetchall()
        audit = conn.execute(
            "SELECT action, actor FROM audit_events WHERE correlation_id = %s ORDER BY id", (correlation,)
        ).fetchall()
    assert {r[1] for r in rows} == {correlation} and {r[0] for r in rows} == {"user", "assistant", "tool"}
    assert ("ActionExecuted", "dev-publisher") in audit


def test_history_survives_a_restart_of_the_controller_and_the_worker(stack: Stack, namespace: str) -> None:
    apply(stack, "restart", "dev-publisher", "deploy payments to ring 2")
    answered(stack, "restart", 1)
    assert reply(stack, "restart") == "Which version of payments? (e.g. 1.4.2)"
    stack.restart_controller()
    stack.restart_worker()
    say(stack, "restart", "m2", "2.0.1")
    answered(stack, "restart", 2, timeout=60)
    assert reply(stack, "restart").startswith("I can deploy payments 2.0.1 to rings 0-2")
    say(stack, "restart", "m3", "no")
    answered(stack, "restart", 3)
    assert reply(stack, "restart").startswith("OK, I did not deploy payments 2.0.1")


@pytest.fixture
def claude_worker(stack: Stack) -> Iterator[FakeMessagesAPI]:
    """The worker restarted with an Anthropic endpoint (a local fake) available to conversations that ask for it."""
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


def test_a_worker_killed_mid_turn_completes_the_turn_exactly_once(
    stack: Stack, namespace: str, claude_worker: FakeMessagesAPI
) -> None:
    slow = anthropic_text("never delivered")
    slow.delay_seconds = 30
    claude_worker.add(anthropic_tool("query_deployments", {"ring": 0}), slow, anthropic_text("Lab runs 1.4.1."))
    apply(stack, "killed", "dev-viewer", "what runs in the lab?", llm={"provider": "anthropic", "model": "claude-e2e"})
    wait_for(lambda: len(claude_worker.requests) >= 2, 30, what="the worker to wait on the model's second answer")
    stack.stop_worker(signal.SIGKILL)
    stack.start_worker()
    obj = answered(stack, "killed", 1, timeout=60)
    assert reply(stack, "killed") == "Lab runs 1.4.1."
    assert len(claude_worker.requests) == 3
    resumed = claude_worker.requests[2].body["messages"]
    assert [m["role"] for m in resumed] == ["user", "assistant", "user"]  # round 1 was not asked again
    with psycopg.connect(stack.database_url) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT message_id FROM messages WHERE conversation_id = %s ORDER BY seq", (obj["metadata"]["uid"],)
            )
        ]
        calls = conn.execute(
            "SELECT count(*) FROM chat_tool_calls WHERE conversation_id = %s", (obj["metadata"]["uid"],)
        ).fetchone()
    assert ids == ["m1", "m1~a1", "m1~t1.0", "m1~a2", "m1~final"]
    assert calls is not None and calls[0] == 1


def test_messages_appended_while_a_turn_runs_are_answered_in_order(stack: Stack, namespace: str) -> None:
    apply(stack, "burst", "dev-viewer", "check system health")
    for number, text in enumerate(("what circuit breakers are open?", "show running tasks", "hello"), start=2):
        say(stack, "burst", f"m{number}", text)
    obj = answered(stack, "burst", 4)
    assert obj["status"]["lastAnsweredId"] == "m4" and reply(stack, "burst").startswith("I can help with these")
    with psycopg.connect(stack.database_url) as conn:
        finals = [
            r[0]
            for r in conn.execute(
                "SELECT turn_id FROM messages WHERE conversation_id = %s AND content ->> 'final' = 'true' ORDER BY seq",
                (obj["metadata"]["uid"],),
            )
        ]
    assert finals == ["m1", "m2", "m3", "m4"]


def test_empty_and_oversized_messages_are_refused_by_the_schema(stack: Stack, namespace: str) -> None:
    for text, problem in (("", "spec.messages[0].text"), ("x" * 4001, "spec.messages[0].text")):
        doc = {
            "apiVersion": "ringpilot.dev/v1alpha1",
            "kind": "Conversation",
            "metadata": {"name": "bad", "namespace": NS},
            "spec": {"user": "dev-viewer", "messages": [{"id": "m1", "text": text}]},
        }
        result = stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), check=False)
        assert result.returncode != 0 and problem in result.stderr


def answered_id(stack: Stack, name: str, message_id: str, timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        obj = stack.get("conversations", name, NS)
        ids = [a["id"] for a in (obj.get("status") or {}).get("answeredMessages", [])]
        return obj if message_id in ids and obj["status"].get("lastAnsweredId") == message_id else None

    return wait_for(done, timeout, what=f"Conversation {name} to answer message {message_id}")


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


@pytest.fixture
def unguarded(stack: Stack) -> Iterator[None]:
    """The cluster without the append-only guard on spec.messages (a cluster whose webhooks are off).

    The admission webhook is one layer; the controller and the worker must not lose a turn without it.
    """
    saved = json.loads(stack.kubectl("get", "validatingwebhookconfiguration", "ringpilot-guards", "-o", "json").stdout)
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        saved["metadata"].pop(key, None)
    lax = {**saved, "webhooks": [w for w in saved["webhooks"] if not w["name"].startswith("guard-conversation")]}
    assert len(lax["webhooks"]) < len(saved["webhooks"])
    stack.kubectl("replace", "-f", "-", stdin=json.dumps(lax))
    try:
        yield
    finally:
        stack.kubectl("replace", "-f", "-", stdin=json.dumps(saved))


def test_deleting_or_reapplying_messages_never_hides_the_next_one(
    stack: Stack, namespace: str, unguarded: None
) -> None:
    apply(stack, "edits", "dev-viewer", "check system health")
    for number, text in ((2, "show running tasks"), (3, "hello")):
        say(stack, "edits", f"m{number}", text)
    answered(stack, "edits", 3)
    remove = json.dumps([{"op": "remove", "path": "/spec/messages/1"}])
    stack.kubectl("patch", "conversation", "edits", "-n", NS, "--type", "json", "-p", remove)
    say(stack, "edits", "m4", "what circuit breakers are open?")
    obj = answered_id(stack, "edits", "m4")
    assert "breaker" in reply(stack, "edits").lower()
    assert obj["status"]["answered"] == 3  # m1, m3 and m4: every message now in the spec
    edited = condition(obj, "MessagesEdited")
    assert (edited["status"], edited["reason"]) == ("True", "MessageRemoved") and "m2" in edited["message"]
    # The tour's `kubectl apply` of the conversation, run again: the spec goes back to m1 alone.
    doc = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "Conversation",
        "metadata": {"name": "edits", "namespace": NS},
        "spec": {"user": "dev-viewer", "messages": [{"id": "m1", "text": "check system health"}]},
    }
    assert "configured" in stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), user="dev-viewer").stdout
    say(stack, "edits", "m5", "hello")
    obj = answered_id(stack, "edits", "m5")
    assert reply(stack, "edits").startswith("I can help with these")
    assert obj["status"]["answered"] == 2
    conditions = {c["type"]: c for c in obj["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "True"

    def named_all() -> dict[str, Any] | None:
        edited = condition(stack.get("conversations", "edits", NS), "MessagesEdited")
        return edited if all(m in edited["message"] for m in ("m2", "m3", "m4")) else None

    wait_for(named_all, 30, what="MessagesEdited to name m2, m3 and m4")
    events = json.loads(stack.kubectl("get", "events", "-n", NS, "-o", "json").stdout)["items"]
    reasons = {e["reason"] for e in events if e["involvedObject"]["name"] == "edits"}
    assert "MessageRemoved" in reasons
