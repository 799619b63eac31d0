"""Appending turns under concurrency and at the CRD's bound, and a stream's fallback to polling without Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.gateway.chatwrites import append_turn, create_conversation
from agent.gateway.errors import GatewayError
from agent.gateway.streaming import Announcements
from controller.api.conversation import MAX_MESSAGES, ChatMessage, Conversation
from controller.api.kinds import CONVERSATION
from controller.devkit.seeding import apply_crds
from controller.kube.client import CustomObjects, KubeError
from controller.storage.cache import redis_client
from tests.fixtures.kube import api_client


@pytest.fixture
async def objects(emulator: Any) -> AsyncIterator[CustomObjects]:
    kube = api_client(emulator.url)
    apply_crds(kube)
    yield CustomObjects(kube)
    kube.close()


async def test_two_appends_from_the_same_stale_read_both_land_once_and_in_order(objects: CustomObjects) -> None:
    made = await create_conversation(objects, "default", "dev-viewer", None, None)
    stale = made  # both "replicas" read the conversation before either wrote
    first = await append_turn(objects, stale, ChatMessage(id="a", text="one"))
    second = await append_turn(objects, stale, ChatMessage(id="b", text="two"))  # 409, re-read, append
    again = await append_turn(objects, stale, ChatMessage(id="a", text="one"))  # found on re-read: not new
    assert (first.new, second.new, again.new) == (True, True, False)
    current = await objects.get(Conversation, "default", made.metadata.name)
    assert [m.id for m in current.spec.messages] == ["a", "b"]


async def test_a_conversation_at_its_message_bound_refuses_another_turn(objects: CustomObjects) -> None:
    full = [ChatMessage(id=f"m{i}", text="hi") for i in range(MAX_MESSAGES)]
    made = await create_conversation(objects, "default", "dev-viewer", None, None)
    body = {"spec": {"messages": [m.to_wire() for m in full]}}
    current = Conversation.from_body(await objects.patch(CONVERSATION, "default", made.metadata.name, body))
    with pytest.raises(GatewayError) as refused:
        await append_turn(objects, current, ChatMessage(id="one-more", text="hi"))
    assert (refused.value.status, refused.value.field) == (422, "text")
    await objects.delete(CONVERSATION, "default", made.metadata.name)
    with pytest.raises(KubeError) as missing:
        await append_turn(objects, made, ChatMessage(id="late", text="anyone there?"))
    assert missing.value.not_found


async def test_without_redis_a_stream_waits_by_polling() -> None:
    quiet = Announcements(None, "uid-x")
    await quiet.open()
    started = time.monotonic()
    await quiet.wait(0.05)
    assert time.monotonic() - started >= 0.05
    dead = redis_client("redis://127.0.0.1:1/0", socket_timeout_seconds=0.2)
    lost = Announcements(dead, "uid-x")
    await lost.open()  # cannot subscribe: falls back to polling
    assert lost.pubsub is None
    await asyncio.wait_for(lost.wait(0.01), 5)
    await lost.close()
    await dead.aclose()
