"""`GET /api/v1/conversations/{name}/events`: one SSE stream per conversation that loses nothing.

Without `Last-Event-ID` (or `?after=`) the stream opens with a `snapshot` (the conversation as
`GET` shows it, with the newest event's seq as its id); then it replays every stored event after that
seq from PostgreSQL and tails the conversation's Redis channel, re-reading PostgreSQL on every
announcement and at least every `RINGPILOT_GATEWAY_POLL_INTERVAL_SECONDS` (the fallback when Redis is
down). Event ids are the per-conversation seq, so any replica can serve any reconnect, and an idle
stream carries a `: ping` comment every `RINGPILOT_GATEWAY_PING_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent
from redis.exceptions import RedisError

from agent.chat.events import channel
from agent.gateway.chatroutes import PREFIX
from agent.gateway.dependencies import ConversationDep, GatewayDep
from agent.gateway.errors import GatewayError
from agent.gateway.presenting import read_transcript, view_of
from agent.gateway.wiring import Gateway
from controller.api.conversation import Conversation
from controller.telemetry.metrics import GATEWAY_STREAMS

logger = logging.getLogger(__name__)
RETRY_MS = 3000
router = APIRouter(prefix=PREFIX, tags=["conversations"])


class Announcements:
    """The conversation's Redis channel, or nothing (then the stream polls)."""

    def __init__(self, redis: Any, conversation_id: str) -> None:
        self.redis = redis
        self.name = channel(conversation_id)
        self.pubsub: Any = None

    async def open(self) -> None:
        if self.redis is None:
            return
        try:
            self.pubsub = self.redis.pubsub()
            await self.pubsub.subscribe(self.name)
        except (RedisError, OSError) as error:
            logger.warning("Stream polls PostgreSQL only: %s", type(error).__name__)
            await self.close()

    async def wait(self, timeout_seconds: float) -> None:
        """Return on an announcement or after `timeout_seconds`."""
        if self.pubsub is None:
            await asyncio.sleep(timeout_seconds)
            return
        try:
            await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout_seconds)
        except (RedisError, OSError) as error:
            logger.warning("Stream lost its Redis channel, polling: %s", type(error).__name__)
            await self.close()

    async def close(self) -> None:
        pubsub, self.pubsub = self.pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except (RedisError, OSError):
                logger.debug("Closing a stream's channel failed")


def resume_point(
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> int | None:
    """Where to resume: the `Last-Event-ID` header wins over `?after=`; None opens with a snapshot."""
    if last_event_id is not None and last_event_id.strip():
        if not last_event_id.strip().isdigit():
            raise GatewayError(422, "Last-Event-ID must be an event id (a number)", field="Last-Event-ID")
        return int(last_event_id.strip())
    return after


async def event_stream(
    gateway: Gateway, conversation: Conversation, after: int | None
) -> AsyncIterator[ServerSentEvent]:
    """The stream (see the module docstring)."""
    uid = conversation.metadata.uid or ""
    settings = gateway.settings
    announcements = Announcements(gateway.redis, uid)
    GATEWAY_STREAMS.inc()
    try:
        await announcements.open()
        yield ServerSentEvent(retry=RETRY_MS, comment="ringpilot")
        if after is None:
            after = await gateway.events.head(uid)
            view = view_of(conversation, await read_transcript(gateway.pool, uid), after)
            yield ServerSentEvent(id=str(after), event="snapshot", data=view.model_dump(mode="json", by_alias=True))
        idle_since = time.monotonic()
        while True:
            events = await gateway.events.after(uid, after)
            for event in events:
                yield ServerSentEvent(id=str(event.seq), event=event.event, data=event.data)
                after = event.seq
            if events:
                idle_since = time.monotonic()
                continue
            if time.monotonic() - idle_since >= settings.gateway_ping_seconds:
                yield ServerSentEvent(comment="ping")
                idle_since = time.monotonic()
            await announcements.wait(min(settings.gateway_poll_interval_seconds, settings.gateway_ping_seconds))
    finally:
        GATEWAY_STREAMS.dec()
        await announcements.close()


@router.get("/{name}/events", response_class=EventSourceResponse)
async def events(
    conversation: ConversationDep, gateway: GatewayDep, start: Annotated[int | None, Depends(resume_point)]
) -> AsyncIterator[ServerSentEvent]:
    """The conversation's events as SSE (`Last-Event-ID` or `?after=` to resume)."""
    async for event in event_stream(gateway, conversation, start):
        yield event
