"""The SSE stream under TestClient: a snapshot first, stored events replayed by seq, resumed exactly after
`Last-Event-ID`, and the event log's own guarantees (one row per key, announced on Redis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.chat.events import EventLog, channel
from agent.chat.state import ChatStateManager
from agent.errors import Unavailable
from tests.gateway.conftest import Gw, auth


def read_events(gw: Gw, name: str, count: int, headers: dict[str, str] | None = None, query: str = "") -> list[Any]:
    """The first `count` events (dicts of id, event, data) of the stream; comments are skipped."""
    out: list[dict[str, Any]] = []
    frame: dict[str, Any] = {}
    url = f"/api/v1/conversations/{name}/events{query}"
    chosen = headers if headers and "Authorization" in headers else {**auth("dev-publisher"), **(headers or {})}
    with gw.client.stream("GET", url, headers=chosen) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line == "":
                if "event" in frame:
                    out.append(frame)
                    if len(out) == count:
                        break
                frame = {}
            elif line.startswith(("id:", "event:", "data:")):
                field, _, value = line.partition(":")
                frame[field] = json.loads(value) if field == "data" else value.strip()
    return out


async def answered(gw: Gw, text: str) -> str:
    made = gw.as_user("dev-publisher").post("/api/v1/conversations", json={"text": text}).json()
    await gw.answer(made["name"])
    return str(made["name"])


async def test_a_stream_replays_the_turn_in_order_with_seq_ids(gw: Gw) -> None:
    name = await answered(gw, "deploy web 1.4.2 to ring 0")
    events = read_events(gw, name, 6, query="?after=0")
    assert [e["event"] for e in events] == [
        "turn.started",
        "tool.started",
        "tool.finished",
        "confirmation.required",
        "assistant.message",
        "turn.completed",
    ]
    assert [int(e["id"]) for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[1]["data"] == {"callId": events[1]["data"]["callId"], "tool": "deploy", "mutating": True}
    assert events[2]["data"]["outcome"] == "proposed"
    assert events[3]["data"]["summary"].startswith("deploy web 1.4.2 to ring")
    assert events[4]["data"]["text"].startswith("I can deploy web 1.4.2")


async def test_without_a_last_event_id_the_stream_opens_with_a_snapshot_and_then_resumes_after_an_id(gw: Gw) -> None:
    name = await answered(gw, "deploy web 1.4.2 to ring 0")
    [snapshot] = read_events(gw, name, 1)
    assert snapshot["event"] == "snapshot" and snapshot["id"] == "6"
    assert snapshot["data"]["pending"]["tool"] == "deploy" and snapshot["data"]["lastEventId"] == 6
    resumed = read_events(gw, name, 2, headers={"Last-Event-ID": "4"})
    assert [(e["id"], e["event"]) for e in resumed] == [("5", "assistant.message"), ("6", "turn.completed")]
    me = gw.as_user("dev-publisher")
    pending = me.get(f"/api/v1/conversations/{name}").json()["pending"]
    me.post(
        f"/api/v1/conversations/{name}/confirmations", json={"pendingId": pending["pendingId"], "decision": "confirm"}
    )
    await gw.answer(name)
    after = read_events(gw, name, 5, headers={"Last-Event-ID": "6"})
    assert [e["event"] for e in after] == [
        "turn.started",
        "tool.started",
        "tool.finished",
        "resource.created",
        "assistant.message",
    ]
    assert after[3]["data"]["kind"] == "DeploymentTask" and after[3]["data"]["namespace"] == "default"
    gw.cluster.custom.patch_namespaced_custom_object(
        "ringpilot.dev", "v1alpha1", "default", "deploymenttasks", after[3]["data"]["name"], {"spec": {"cancel": True}}
    )


def test_a_last_event_id_that_is_not_a_number_is_refused(gw: Gw) -> None:
    name = gw.as_user("dev-publisher").post("/api/v1/conversations", json={}).json()["name"]
    bad = gw.client.get(f"/api/v1/conversations/{name}/events", headers={**auth("dev-publisher"), "Last-Event-ID": "x"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "Last-Event-ID"


@pytest.fixture
async def conversation_row(db_pool: Any) -> str:
    await ChatStateManager(db_pool).create_conversation("dev-viewer", "corr-ev", conversation_id="uid-ev")
    return "uid-ev"


async def test_an_event_is_stored_once_per_key_and_announced_after_it_is_committed(
    db_pool: Any, redis_async: Any, conversation_row: str
) -> None:
    log = EventLog(db_pool, redis_async)
    pubsub = redis_async.pubsub()
    await pubsub.subscribe(channel(conversation_row))
    await pubsub.get_message(timeout=1)  # the subscription confirmation
    first = await log.emit(conversation_row, "m1/turn.started/1", "turn.started", {"messageId": "m1"})
    again = await log.emit(conversation_row, "m1/turn.started/1", "turn.started", {"messageId": "m1"})
    second = await log.emit(conversation_row, "m1/turn.completed", "turn.completed", {"messageId": "m1"})
    assert (first, again, second) == (1, None, 2)
    note = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
    assert note is not None and json.loads(note["data"]) == {"conversation": conversation_row, "seq": 1}
    assert [e.event for e in await log.after(conversation_row, 0)] == ["turn.started", "turn.completed"]
    assert [e.seq for e in await log.after(conversation_row, 1)] == [2]
    assert await log.head(conversation_row) == 2
    await pubsub.aclose()


async def test_with_redis_unreachable_an_event_is_still_stored(db_pool: Any, conversation_row: str) -> None:
    from controller.storage.cache import redis_client

    dead = redis_client("redis://127.0.0.1:1/0", socket_timeout_seconds=0.5)
    log = EventLog(db_pool, dead)
    assert await log.emit(conversation_row, "m1/turn.started/1", "turn.started", {}) == 1
    assert await log.head(conversation_row) == 1
    await dead.aclose()


class Outage:
    """A language model that is down (what the Anthropic and OpenAI providers raise on 529/timeouts)."""

    name = "outage"
    model = "outage-1"

    async def complete(self, request: Any) -> Any:
        raise Unavailable("The model is overloaded", 2.0, reason="ProviderOverloaded")

    async def aclose(self) -> None:
        return None


async def test_a_delayed_turn_streams_turn_failed_with_when_it_is_retried(
    gw: Gw, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gw.harness.engine.providers, "get", lambda requested=None: Outage())
    made = gw.as_user("dev-viewer").post("/api/v1/conversations", json={"text": "what runs in the lab?"}).json()
    await gw.answer(made["name"])
    started, failed = read_events(gw, made["name"], 2, query="?after=0", headers=auth("dev-viewer"))
    assert (started["event"], failed["event"]) == ("turn.started", "turn.failed")
    assert failed["data"]["reason"] == "ProviderOverloaded" and "I am delayed" in failed["data"]["message"]
    retry_at = datetime.fromisoformat(failed["data"]["retryAt"].replace("Z", "+00:00"))
    assert retry_at > datetime.now(UTC)
    assert gw.harness.retries and gw.harness.retries[0][3] == "m1"


async def test_a_turn_that_fails_for_good_streams_turn_failed_without_a_retry(gw: Gw) -> None:
    body = {"text": "hello", "llm": {"provider": "anthropic"}}  # no key configured
    made = gw.as_user("dev-viewer").post("/api/v1/conversations", json=body).json()
    await gw.answer(made["name"])
    events = read_events(gw, made["name"], 3, query="?after=0", headers=auth("dev-viewer"))
    assert [e["event"] for e in events] == ["turn.started", "assistant.message", "turn.failed"]
    assert events[2]["data"]["reason"] == "ProviderNotConfigured" and events[2]["data"]["retryAt"] is None
    view = gw.as_user("dev-viewer").get(f"/api/v1/conversations/{made['name']}").json()
    assert view["state"] == "Failed"


def test_an_idle_stream_carries_keep_alive_pings_and_counts_as_open(
    tmp_path: Any, database_url: str, redis_url: str, cluster: Any
) -> None:
    from fastapi.testclient import TestClient

    from agent.gateway.app import create_app
    from tests.fixtures.kube import api_client
    from tests.gateway.conftest import gateway_settings

    kube = api_client(cluster.url)
    app = create_app(gateway_settings(tmp_path, database_url, redis_url, gateway_ping_seconds=0.2), api_client=kube)
    with TestClient(app) as client:
        name = client.post("/api/v1/conversations", json={}, headers=auth("dev-viewer")).json()["name"]
        url = f"/api/v1/conversations/{name}/events"
        with client.stream("GET", url, headers=auth("dev-viewer")) as response:
            seen = []
            lines = response.iter_lines()  # held open: a dropped iterator would close the stream
            for line in lines:
                seen.append(line)
                if line == ": ping":
                    break
            assert "retry: 3000" in seen and "event: snapshot" in seen  # reconnect delay, then the snapshot
            assert "ringpilot_gateway_streams 1.0" in client.get("/metrics").text
            del lines
    kube.close()
