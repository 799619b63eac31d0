"""The real handlers under a running Kopf operator: what a user sees on the objects they create.

A rejected spec gets `InvalidSpec` naming the field and a `SpecRejected` Event; a Conversation
message becomes one `answer_turn` message on Redis; every object gets its correlation label; a CAB
decision appended to a ChangeRequest is judged.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import redis

from controller.api.conversation import TURN_ACTOR, TURN_QUEUE
from controller.api.labels import CORRELATION_LABEL
from controller.messaging.broker import REDIS_NAMESPACE
from controller.messaging.dispatching import message_id_for
from tests.operator.conftest import LiveOperator, eventually


def conditions_of(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}


async def test_a_task_with_a_bad_spec_gets_invalid_spec_naming_the_field_and_a_spec_rejected_event(
    operator: LiveOperator,
) -> None:
    await operator.create(
        "deploymenttasks",
        {
            "apiVersion": "ringpilot.dev/v1alpha1",
            "kind": "DeploymentTask",
            "metadata": {"name": "bad-gates"},
            "spec": {"app": "web", "version": "1.0.0", "maxRing": 1, "gates": [{"ring": 4}]},
        },
    )

    async def invalid() -> dict[str, Any] | None:
        return conditions_of(await operator.get("deploymenttasks", "bad-gates")).get("InvalidSpec")

    condition = await eventually(invalid, "InvalidSpec on the task")
    assert condition["status"] == "True"
    assert condition["message"] == "spec.gates[0].ring: ring 4 is beyond maxRing 1"
    task = await operator.get("deploymenttasks", "bad-gates")
    assert conditions_of(task)["Ready"]["status"] == "False"
    assert (task["status"] or {}).get("steps") in (None, [])  # nothing else happened
    correlation_id = task["metadata"]["labels"][CORRELATION_LABEL]

    async def rejected_events() -> list[Any]:
        return [e for e in await operator.events_for("bad-gates") if e.reason == "SpecRejected"]

    [event] = await eventually(rejected_events, "the SpecRejected Event")
    assert event.type == "Warning"
    assert "spec.gates[0].ring: ring 4 is beyond maxRing 1" in event.message
    assert event.message.endswith(f"[correlation {correlation_id}]")


async def test_a_conversation_message_enqueues_one_turn_for_the_worker(operator: LiveOperator) -> None:
    await operator.create(
        "conversations",
        {
            "apiVersion": "ringpilot.dev/v1alpha1",
            "kind": "Conversation",
            "metadata": {"name": "chat"},
            "spec": {"user": "dev-viewer", "messages": [{"id": "m1", "text": "what is the status of web?"}]},
        },
    )
    queue = redis.Redis.from_url(str(operator.settings.redis_url))
    messages_key = f"{REDIS_NAMESPACE}-dramatiq:{TURN_QUEUE}.msgs"
    try:

        async def enqueued() -> dict[bytes, bytes]:
            return queue.hgetall(messages_key)  # type: ignore[return-value]

        stored = await eventually(enqueued, f"a message in {messages_key}", 30)
    finally:
        queue.close()

    async def recorded() -> dict[str, Any] | None:
        # the handler enqueues first and Kopf writes its status after it returns: wait for that write
        found: dict[str, Any] = await operator.get("conversations", "chat")
        return found if (found.get("status") or {}).get("correlationId") else None

    conversation = await eventually(recorded, "the conversation's status.correlationId", 30)
    uid = conversation["metadata"]["uid"]
    [raw] = stored.values()
    message = json.loads(raw)
    assert message["actor_name"] == TURN_ACTOR
    assert message["options"]["idempotency_key"] == f"turn/{uid}/m1"
    assert message["message_id"] == message_id_for(f"turn/{uid}/m1")  # a redelivered turn keeps its id
    assert message["kwargs"] == {
        "namespace": "default",
        "name": "chat",
        "uid": uid,
        "message_id": "m1",
        "correlation_id": conversation["metadata"]["labels"][CORRELATION_LABEL],
    }
    assert conversation["status"]["correlationId"] == conversation["metadata"]["labels"][CORRELATION_LABEL]


async def test_an_assignment_gets_its_correlation_label(operator: LiveOperator) -> None:
    await operator.create(
        "assignments",
        {
            "apiVersion": "ringpilot.dev/v1alpha1",
            "kind": "Assignment",
            "metadata": {"name": "web-ring-0"},
            "spec": {
                "app": "web",
                "version": "1.4.1",
                "ring": 0,
                "target": {"plane": "kubernetes", "namespace": "ring-0-lab", "name": "web"},
                "drift": {"mode": "Warn"},
            },
        },
    )

    async def labelled() -> str | None:
        labels = (await operator.get("assignments", "web-ring-0"))["metadata"].get("labels") or {}
        return labels.get(CORRELATION_LABEL)

    correlation_id = await eventually(labelled, "the correlation label on the Assignment")
    assert len(correlation_id) == 36
    assignment = await operator.get("assignments", "web-ring-0")
    assert (
        "InvalidSpec" not in conditions_of(assignment) or conditions_of(assignment)["InvalidSpec"]["status"] == "False"
    )


async def test_a_change_request_no_task_opened_approves_nothing(operator: LiveOperator) -> None:
    await operator.create(
        "changerequests",
        {
            "apiVersion": "ringpilot.dev/v1alpha1",
            "kind": "ChangeRequest",
            "metadata": {"name": "payments-cab"},
            "spec": {
                "task": "payments-2-0-0",
                "app": "payments",
                "version": "2.0.0",
                "maxRing": 4,
                "riskScore": 62,
                "planDigest": "4f9c2a7e1b3d5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcd",
                "requiredApprovals": 2,
                "submittedBy": "dev-publisher",
                "reviewDeadline": "2030-01-01T00:00:00Z",
                "decisions": [
                    {"approver": "dev-approver", "decision": "Approve"},
                    {"approver": "dev-viewer", "decision": "Approve"},
                ],
            },
        },
    )

    async def refused() -> dict[str, Any] | None:
        status = (await operator.get("changerequests", "payments-cab")).get("status") or {}
        return status if conditions_of({"status": status}).get("Ready", {}).get("reason") else None

    # No DeploymentTask opened it (there is none): it approves nothing, and no decision is judged.
    status = await eventually(refused, "the ChangeRequest to be looked at")
    assert status["approvals"] == 0 and not status.get("outcomes")
    ready = conditions_of({"status": status})["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "NotOpenedByController")
    assert "approves nothing" in ready["message"]

    async def verdicts() -> set[str]:
        reasons = {e.reason for e in await operator.events_for("payments-cab")}
        return reasons if "NotOpenedByController" in reasons else set()

    assert await eventually(verdicts, "an Event saying why")


async def test_an_assignment_has_no_finalizer_and_its_deletion_is_audited_from_the_watch(
    operator: LiveOperator,
) -> None:
    body = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "Assignment",
        "metadata": {"name": "web-ring-0-gone"},
        "spec": {
            "app": "web",
            "version": "1.4.1",
            "ring": 0,
            "target": {"plane": "kubernetes", "namespace": "ring-0-lab", "name": "web"},
            "drift": {"mode": "Warn"},
        },
    }
    await operator.create("assignments", body)

    async def labelled() -> str | None:
        labels = (await operator.get("assignments", "web-ring-0-gone"))["metadata"].get("labels") or {}
        return labels.get(CORRELATION_LABEL)

    correlation_id = await eventually(labelled, "the first reconcile of the Assignment")
    assert not (await operator.get("assignments", "web-ring-0-gone"))["metadata"].get("finalizers")
    await asyncio.to_thread(
        operator.custom.delete_namespaced_custom_object,
        "ringpilot.dev",
        "v1alpha1",
        "default",
        "assignments",
        "web-ring-0-gone",
    )

    async def audited() -> list[dict[str, Any]]:
        async with await psycopg.AsyncConnection.connect(operator.settings.database_url) as conn:
            cursor = await conn.execute(
                "SELECT action, actor FROM audit_events WHERE correlation_id = %s AND kind = 'Assignment'"
                " AND name = 'web-ring-0-gone' AND action = 'Deleted'",
                (correlation_id,),
            )
            return [{"action": row[0], "actor": row[1]} for row in await cursor.fetchall()]

    assert await eventually(audited, "the Deleted audit row") == [{"action": "Deleted", "actor": "system:ringpilot"}]
