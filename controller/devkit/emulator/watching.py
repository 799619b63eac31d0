"""Watch streams: newline-delimited JSON events over a chunked HTTP response.

A `Watcher` subscribes to the store and snapshots the initial state in one synchronous step, so no
event can fall between a list and a watch from that list's resourceVersion. Selectors apply to
events too (an object that stops matching is sent as DELETED). `endpoints.py` calls `serve_watch()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .apierrors import ApiError
from .resourcetypes import ResourceType
from .selectors import Selector
from .store import Event, ObjectStore

Json = dict[str, Any]
Encoder = Callable[[str, Json], bytes]
DEFAULT_TIMEOUT_SECONDS = 1800.0


class Watcher:
    """One watch stream's subscription: filters store events and queues them for sending."""

    def __init__(self, rt: ResourceType, namespace: str | None, labels: Selector, fields: Selector) -> None:
        self.key = rt.key
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.queue: asyncio.Queue[tuple[str, Json] | None] = asyncio.Queue()

    def matches(self, obj: Json) -> bool:
        return (not self.labels or self.labels.matches(obj)) and (not self.fields or self.fields.matches(obj))

    def offer(self, event: Event) -> None:
        if self.namespace is not None and event.namespace != self.namespace:
            return
        now_ok = self.matches(event.obj)
        if event.type == "MODIFIED" and event.old is not None:
            was_ok = self.matches(event.old)
            if now_ok:
                self.queue.put_nowait(("MODIFIED" if was_ok else "ADDED", event.obj))
            elif was_ok:
                new_rv = event.obj["metadata"]["resourceVersion"]
                old_meta = {**event.old["metadata"], "resourceVersion": new_rv}
                self.queue.put_nowait(("DELETED", {**event.old, "metadata": old_meta}))
        elif now_ok:
            self.queue.put_nowait((event.type, event.obj))

    def close(self) -> None:
        self.queue.put_nowait(None)


@dataclass
class WatchRequest:
    """What a watch asked for, parsed from the query string."""

    rt: ResourceType
    namespace: str | None
    labels: Selector
    fields: Selector
    resource_version: str | None
    timeout_seconds: float
    bookmarks: bool
    send_initial_events: bool


def json_line(event_type: str, obj: Json) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _since(raw: str | None) -> int | None:
    if raw in (None, "", "0"):
        return None
    try:
        return int(str(raw))
    except ValueError as e:
        raise ApiError.bad_request(f"invalid resource version: {raw}") from e


def subscribe(store: ObjectStore, watch: WatchRequest) -> tuple[Watcher, list[tuple[str, Json]]]:
    """Register the watcher and compute its initial events atomically (no await in between)."""
    watcher = Watcher(watch.rt, watch.namespace, watch.labels, watch.fields)
    since = _since(watch.resource_version)
    backlog = store.subscribe(watcher, since)
    initial: list[tuple[str, Json]] = []
    if since is None or watch.send_initial_events:
        items = store.items(watch.rt.key, watch.namespace)
        initial = [("ADDED", obj) for obj in items if watcher.matches(obj)]
    for event in backlog:
        watcher.offer(event)
    return watcher, initial


async def serve_watch(
    request: web.Request, store: ObjectStore, watch: WatchRequest, encode: Encoder, bookmark_interval: float
) -> web.StreamResponse:
    """Stream events until `timeoutSeconds`, the client leaving, or the server stopping."""
    response = web.StreamResponse(
        status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
    )
    response.enable_chunked_encoding()
    try:
        watcher, initial = subscribe(store, watch)
    except ApiError as e:
        await response.prepare(request)
        await response.write(json_line("ERROR", e.status()))
        await response.write_eof()
        return response
    loop = asyncio.get_running_loop()
    try:
        await response.prepare(request)
        if initial:
            await response.write(b"".join(encode(t, o) for t, o in initial))
        if watch.send_initial_events and watch.bookmarks:
            await response.write(_bookmark(watch, store, initial_end=True))
        deadline = loop.time() + watch.timeout_seconds
        next_bookmark = loop.time() + bookmark_interval
        while (remaining := deadline - loop.time()) > 0:
            wait = min(remaining, max(next_bookmark - loop.time(), 0.0)) if watch.bookmarks else remaining
            try:
                item = await asyncio.wait_for(watcher.queue.get(), wait)
            except TimeoutError:
                if watch.bookmarks and loop.time() >= next_bookmark:
                    await response.write(_bookmark(watch, store))
                    next_bookmark = loop.time() + bookmark_interval
                continue
            items = [item]
            while item is not None and not watcher.queue.empty():
                item = watcher.queue.get_nowait()
                items.append(item)
            await response.write(b"".join(encode(t, o) for t, o in (i for i in items if i is not None)))
            if item is None:
                break
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
    except ConnectionError:
        pass
    finally:
        store.unsubscribe(watcher)
    return response


def _bookmark(watch: WatchRequest, store: ObjectStore, initial_end: bool = False) -> bytes:
    meta: Json = {"resourceVersion": str(store.rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    rt = watch.rt
    return json_line("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta})
