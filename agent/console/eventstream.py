"""Reading a conversation's SSE stream, resuming it with `Last-Event-ID` when it drops.

httpx-sse parses the `text/event-stream` lines; `ConversationEvents` turns each dispatched event into a
`StreamEvent` (its integer id, name and JSON data), skips keep-alives and blocks without data (the
WHATWG rule: an empty data buffer dispatches nothing), remembers the last id and the server's `retry:`
delay, and reconnects after that delay from the last id when the connection drops or ends, so the
caller sees every event exactly once. A 4xx answer is not retried: it is raised as `GatewayError`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import ServerSentEvent, SSEError, connect_sse
from pydantic import BaseModel, ConfigDict, Field

from agent.console.gatewayclient import API, GatewayClient, GatewayError, error_from

logger = logging.getLogger(__name__)

#: Wait before reconnecting when the server has not said (`retry:`), and the most we ever wait.
DEFAULT_RETRY_MS = 3000
MAX_RETRY_MS = 30_000
#: Reconnects in a row without a single event before the stream gives up.
MAX_RECONNECTS = 20


class StreamEvent(BaseModel):
    """One event of a conversation's stream."""

    model_config = ConfigDict(frozen=True)

    id: int | None = Field(None, description="The per-conversation sequence number (the SSE id)")
    event: str
    data: dict[str, Any] = Field(default_factory=dict)


def to_stream_event(sse: ServerSentEvent) -> StreamEvent | None:
    """The `StreamEvent` of one dispatched SSE block, or None for one that carries no data."""
    if not sse.data:
        return None
    try:
        data = json.loads(sse.data)
    except ValueError:
        data = {"text": sse.data}
    if not isinstance(data, dict):
        data = {"value": data}
    event_id = int(sse.id) if sse.id and sse.id.isdigit() else None
    return StreamEvent(id=event_id, event=sse.event or "message", data=data)


class ConversationEvents:
    """The events of one conversation after `last_id` (0: from the first), across reconnects."""

    def __init__(
        self,
        client: GatewayClient,
        conversation: str,
        *,
        last_id: int = 0,
        namespace: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_reconnects: int = MAX_RECONNECTS,
    ) -> None:
        self.client = client
        self.path = f"{API}/conversations/{quote(conversation, safe='')}/events"
        self.params = {"namespace": namespace} if namespace else {}
        self.last_id = last_id
        self.retry_ms = DEFAULT_RETRY_MS
        self.sleep = sleep
        self.max_reconnects = max_reconnects
        self.reconnects = 0

    def _connect(self) -> Iterator[StreamEvent]:
        headers = {"Last-Event-ID": str(self.last_id)}
        with connect_sse(self.client.http, "GET", self.path, headers=headers, params=self.params) as source:
            if source.response.is_error:
                source.response.read()
                raise error_from(source.response)
            for sse in source.iter_sse():
                if sse.retry is not None:
                    self.retry_ms = min(max(sse.retry, 0), MAX_RETRY_MS)
                event = to_stream_event(sse)
                if event is None:
                    continue
                if event.id is not None:
                    if event.id <= self.last_id:  # already seen (a replica replayed it): never twice
                        continue
                    self.last_id = event.id
                self.reconnects = 0
                yield event

    def __iter__(self) -> Iterator[StreamEvent]:
        while True:
            try:
                yield from self._connect()
                logger.debug("The stream ended; resuming after event %s", self.last_id)
            except GatewayError as error:
                if 400 <= error.status < 500:
                    raise
                logger.debug("The gateway answered %s; resuming after event %s", error, self.last_id)
            except (httpx.TransportError, SSEError) as error:
                logger.debug("The stream dropped (%s); resuming after event %s", error, self.last_id)
            self.reconnects += 1
            if self.reconnects > self.max_reconnects:
                raise GatewayError(0, "Unavailable", f"the event stream kept dropping ({self.reconnects - 1} retries)")
            self.sleep(self.retry_ms / 1000)
