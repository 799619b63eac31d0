"""The chat with the language model down, and the chat following what it created.

Read-only questions are answered by the offline router while the model is unavailable; a request
that would change something waits for the model as before. A turn that fails for good posts one
TurnFailed Event. A task the chat created that ends Failed is named, with its reason, in the next
reply only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from agent.conversation.failureevents import post_turn_failed
from agent.errors import TurnFailed
from controller.storage.db import Pool
from tests.agent.conftest import Cluster, Harness, build_harness
from tests.agent.fakes import FakeMessagesAPI, anthropic_error
from tests.agent.test_anthropic import claude_settings


@pytest.fixture
def fake() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI() as server:
        yield server


@pytest.fixture
def down(cluster: Cluster, db_pool: Pool, redis_async: Any, fake: FakeMessagesAPI) -> Harness:
    """A harness whose Anthropic endpoint is overloaded on every request."""
    fake.add(*(anthropic_error(529, "overloaded_error") for _ in range(20)))
    return build_harness(cluster, db_pool, redis_async, claude_settings(fake, llm_max_retries=0))


def events_of(cluster: Cluster, name: str) -> list[Any]:
    items = client.CoreV1Api(cluster.admin).list_namespaced_event("default").items
    return [e for e in items if e.involved_object.name == name]


async def test_a_read_only_question_is_answered_by_the_offline_router_while_the_model_is_down(down: Harness) -> None:
    down.start("c", "dev-viewer", "what runs in the lab?")
    status = (await down.answer("c")).status
    assert status.answered == 1 and down.retries == []
    assert status.reply is not None and status.reply.startswith("Deployments in ring 0 (Lab):")
    assert status.reply.endswith(
        "(The language model is unavailable (ProviderOverloaded), so the offline router answered this read-only "
        "question.)"
    )


async def test_a_change_waits_for_the_model_instead(
    cluster: Cluster, db_pool: Pool, redis_async: Any, fake: FakeMessagesAPI
) -> None:
    fake.add(*(anthropic_error(529, "overloaded_error") for _ in range(5)))
    # the next try is due 1 s later, so this answer stops at the delay even on a loaded machine
    settings = claude_settings(fake, llm_max_retries=0, turn_min_backoff_ms=1000, turn_max_backoff_ms=2000)
    slow = build_harness(cluster, db_pool, redis_async, settings)
    slow.start("c", "dev-publisher", "deploy web 1.4.3 to ring 1")
    status = (await slow.answer("c")).status
    assert status.answered == 0 and status.pending is None
    assert status.reply is not None and "delayed" in status.reply
    assert len(slow.retries) == 1


async def test_a_turn_that_fails_for_good_posts_one_event(down: Harness) -> None:
    down.start("c", "dev-publisher", "deploy web 1.4.3 to ring 1")
    deadline = time.monotonic() + 30
    while down.conversation("c").status.answered == 0 and time.monotonic() < deadline:
        await down.answer("c")  # each try is due after its backoff (at most 100 ms); the third gives up
        await asyncio.sleep(0.12)
    conversation = down.conversation("c")
    assert conversation.status.answered == 1
    [event] = events_of(down.cluster, "c")
    assert (event.reason, event.type) == ("TurnFailed", "Warning")
    assert event.message.startswith("Message m1 could not be answered: ProviderOverloaded:")
    again = TurnFailed("ProviderOverloaded", "still down")
    await post_turn_failed(down.worker.core, conversation, "m1", again, "corr-c", datetime.now(UTC))
    assert len(events_of(down.cluster, "c")) == 1  # a redelivered turn posts nothing twice


async def test_the_next_reply_tells_once_that_a_task_the_chat_created_failed(harness: Harness) -> None:
    harness.start("c", "dev-publisher", "deploy web 1.4.2 to ring 1")
    await harness.answer("c")
    assert (await harness.chat_turn("c", "yes")).startswith("Created DeploymentTask")
    [ref] = harness.conversation("c").status.resources
    failed = {
        "phase": "Failed",
        "finishedAt": datetime.now(UTC).isoformat(),
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "GateFailed",
                "message": "ring 1 success rate 0.50 is below 0.98",
                "lastTransitionTime": "2026-12-01T00:00:00Z",
            }
        ],
    }
    harness.cluster.patch_status("deploymenttasks", ref.name, failed)
    reply = await harness.chat_turn("c", "hello")
    assert reply.startswith(
        f"Heads-up: DeploymentTask {ref.name} that you created here (deploy web 1.4.2 up to ring 1) ended Failed: "
        "GateFailed: ring 1 success rate 0.50 is below 0.98\n\n"
    )
    assert "Heads-up" not in await harness.chat_turn("c", "hello again")


def test_a_failure_without_a_ready_message_is_told_with_its_failed_step() -> None:
    from agent.conversation.following import notice
    from controller.api.deploymenttask import DeploymentTask

    body = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "DeploymentTask",
        "metadata": {"name": "web-undo", "namespace": "default"},
        "spec": {"app": "web", "version": "1.4.2", "maxRing": 1, "action": "Rollback"},
        "status": {
            "phase": "RolledBack",
            "steps": [{"name": "Monitor", "ring": 1, "state": "Failed", "message": "pods crash-looping in ring 1"}],
        },
    }
    assert notice(DeploymentTask.from_body(body)) == (
        "Heads-up: DeploymentTask web-undo that you created here (rollback web 1.4.2 up to ring 1) ended RolledBack: "
        "pods crash-looping in ring 1"
    )
    body["status"]["steps"] = []
    assert notice(DeploymentTask.from_body(body)).endswith("ended RolledBack: no reason recorded")
