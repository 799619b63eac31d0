"""The CLI's SSE reader: every event once, in order, across a dropped connection resumed with Last-Event-ID.

The gateway's side of the wire is replayed byte for byte through httpx's MockTransport (the stream
format of gateway-chart.md §1.3, with `: ping` comments and a `retry:` block), so these tests need no
server; the real gateway is driven in test_cli_e2e.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from agent.console.connection import GatewayTarget
from agent.console.eventstream import ConversationEvents, StreamEvent
from agent.console.gatewayclient import GatewayClient, GatewayError

SSE = {"content-type": "text/event-stream; charset=utf-8"}


def frame(seq: int, event: str, data: object) -> bytes:
    return f"id: {seq}\nevent: {event}\ndata: {json.dumps(data)}\n\n".encode()


class Server:
    """Answers each GET of the events URL with the next scripted body, and records the request headers."""

    def __init__(self, *bodies: Callable[[], httpx.Response]) -> None:
        self.bodies = list(bodies)
        self.last_event_ids: list[str | None] = []
        self.params: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/conversations/c1/events"
        assert request.headers["authorization"] == "Bearer t0ken"
        self.last_event_ids.append(request.headers.get("last-event-id"))
        self.params.append(dict(request.url.params))
        if not self.bodies:
            return httpx.Response(503, json={"error": {"code": "Unavailable", "message": "no more scripted bodies"}})
        return self.bodies.pop(0)()


def stream(*chunks: bytes, drop: bool = False) -> Callable[[], httpx.Response]:
    def body() -> Iterator[bytes]:
        yield from chunks
        if drop:
            raise httpx.ReadError("connection reset by peer")

    return lambda: httpx.Response(200, headers=SSE, content=body())


def client_for(server: Server) -> GatewayClient:
    target = GatewayTarget(url="http://gateway.test", token="t0ken", token_source="test")
    return GatewayClient(target, transport=httpx.MockTransport(server))


def take(events: ConversationEvents, count: int) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    for event in events:
        out.append(event)
        if len(out) == count:
            break
    return out


def test_named_events_with_ids_and_json_data_skipping_pings_and_the_retry_block() -> None:
    server = Server(
        stream(
            b"retry: 500\n: ringpilot\n\n",
            frame(1, "turn.started", {"messageId": "m1"}),
            b": ping\n\n",
            frame(2, "tool.started", {"callId": "c3", "tool": "check_health", "mutating": False}),
            b'id: 3\nevent: assistant.message\ndata: {"messageId": "m1",\ndata:  "text": "All healthy"}\n\n',
        )
    )
    naps: list[float] = []
    with client_for(server) as client:
        events = take(ConversationEvents(client, "c1", sleep=naps.append), 3)

    assert [(e.id, e.event) for e in events] == [(1, "turn.started"), (2, "tool.started"), (3, "assistant.message")]
    assert events[1].data["tool"] == "check_health"
    assert events[2].data == {"messageId": "m1", "text": "All healthy"}  # a multi-line data field is one JSON value
    assert server.last_event_ids == ["0"]
    assert naps == []


def test_a_dropped_stream_resumes_after_the_last_id_and_yields_each_event_exactly_once() -> None:
    server = Server(
        stream(
            b"retry: 250\n\n", frame(1, "turn.started", {"messageId": "m1"}), frame(2, "tool.started", {}), drop=True
        ),
        # the replica that takes the reconnect replays from the header, and one event too many
        stream(
            frame(2, "tool.started", {}), frame(3, "assistant.message", {"text": "hi"}), frame(4, "turn.completed", {})
        ),
    )
    naps: list[float] = []
    with client_for(server) as client:
        events = take(ConversationEvents(client, "c1", sleep=naps.append), 3)

    assert [e.id for e in events] == [1, 2, 3]
    assert server.last_event_ids == ["0", "2"]
    assert naps == [0.25]  # the server's retry: delay, in seconds


def test_a_stream_that_ends_is_reopened_from_where_it_was() -> None:
    server = Server(stream(frame(7, "turn.started", {})), stream(frame(8, "turn.completed", {})))
    with client_for(server) as client:
        events = ConversationEvents(client, "c1", last_id=6, namespace="team-a", sleep=lambda _: None)
        assert [e.id for e in take(events, 2)] == [7, 8]
        assert events.last_id == 8
    assert server.last_event_ids == ["6", "7"]
    assert server.params[0] == {"namespace": "team-a"}


def test_a_refusal_is_raised_with_the_gateways_reason_and_not_retried() -> None:
    server = Server(
        lambda: httpx.Response(
            404, json={"error": {"code": "NotFound", "message": "Conversation default/c1 not found"}}
        )
    )
    with client_for(server) as client, pytest.raises(GatewayError) as raised:
        take(ConversationEvents(client, "c1", sleep=lambda _: None), 1)
    assert (raised.value.status, raised.value.code) == (404, "NotFound")
    assert "Conversation default/c1 not found" in str(raised.value)
    assert len(server.last_event_ids) == 1


def test_an_unavailable_gateway_is_retried_then_given_up_on() -> None:
    server = Server()  # every answer is a 503
    naps: list[float] = []
    with client_for(server) as client, pytest.raises(GatewayError, match="kept dropping"):
        take(ConversationEvents(client, "c1", sleep=naps.append, max_reconnects=3), 1)
    assert len(server.last_event_ids) == 4
    assert naps == [3.0, 3.0, 3.0]


def test_data_that_is_not_a_json_object_is_still_delivered() -> None:
    server = Server(stream(b"id: 1\nevent: note\ndata: plain words\n\n", b"id: 2\ndata: [1, 2]\n\n"))
    with client_for(server) as client:
        events = take(ConversationEvents(client, "c1", sleep=lambda _: None), 2)
    assert events[0].data == {"text": "plain words"}
    assert (events[1].event, events[1].data) == ("message", {"value": [1, 2]})
