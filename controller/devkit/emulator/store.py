"""The object store: current objects, the global resourceVersion counter and the watch event history.

Objects are kept by (group, plural) → namespace → name, so gets are O(1) and lists touch one
resource only. Stored dicts are never mutated after `put()`; writers always store a fresh dict.
A bounded history of events lets a watch resume from any recent resourceVersion; older ones get 410.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from .apierrors import ApiError

Json = dict[str, Any]
Key = tuple[str, str]


@dataclass(frozen=True)
class Event:
    """One change: `obj` is the new state (the final state for DELETED); `old` the previous one."""

    rv: int
    type: str
    key: Key
    namespace: str
    obj: Json
    old: Json | None = None


class Subscriber(Protocol):
    """A watch stream: receives every event of its resource, filters and queues it."""

    key: Key

    def offer(self, event: Event) -> None: ...

    def close(self) -> None: ...


class ObjectStore:
    """In-memory objects plus event fan-out; all calls happen on the server's event loop."""

    def __init__(self, history_size: int = 10_000) -> None:
        self.rv = 0
        self.compacted_rv = 0
        self.dirty = False
        self._data: dict[Key, dict[str, dict[str, Json]]] = {}
        self._history: deque[Event] = deque()
        self._history_size = history_size
        self._subscribers: dict[Key, set[Subscriber]] = {}
        self._uids: dict[str, tuple[Key, str, str]] = {}
        self._dependents: dict[str, set[tuple[Key, str, str]]] = {}

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def get(self, key: Key, namespace: str, name: str) -> Json | None:
        return self._data.get(key, {}).get(namespace, {}).get(name)

    def items(self, key: Key, namespace: str | None = None) -> list[Json]:
        """Objects of one resource, sorted by namespace then name (etcd key order)."""
        spaces = self._data.get(key, {})
        if namespace is not None:
            bucket = spaces.get(namespace, {})
            return [bucket[n] for n in sorted(bucket)]
        return [spaces[ns][n] for ns in sorted(spaces) for n in sorted(spaces[ns])]

    def has_items(self, key: Key) -> bool:
        return any(self._data.get(key, {}).values())

    def keys(self) -> list[Key]:
        return list(self._data)

    def in_namespace(self, namespace: str) -> Iterator[tuple[Key, Json]]:
        """Every object in a namespace, across all resources."""
        for key, spaces in list(self._data.items()):
            for obj in list(spaces.get(namespace, {}).values()):
                yield key, obj

    def namespace_is_empty(self, namespace: str) -> bool:
        return not any(spaces.get(namespace) for spaces in self._data.values())

    def find_uid(self, uid: str) -> Json | None:
        where = self._uids.get(uid)
        return self.get(*where) if where else None

    def dependents(self, uid: str) -> list[tuple[Key, Json]]:
        """Objects (with their resource key) whose ownerReferences name this uid."""
        found = [(where[0], self.get(*where)) for where in sorted(self._dependents.get(uid, ()))]
        return [(key, obj) for key, obj in found if obj is not None]

    def _index(self, where: tuple[Key, str, str], obj: Json | None, add: bool) -> None:
        if obj is None:
            return
        meta = obj.get("metadata") or {}
        if add:
            self._uids[meta.get("uid", "")] = where
        else:
            self._uids.pop(meta.get("uid", ""), None)
        for ref in meta.get("ownerReferences") or []:
            uid = ref.get("uid", "") if isinstance(ref, dict) else ""
            bucket = self._dependents.setdefault(uid, set())
            if add:
                bucket.add(where)
            else:
                bucket.discard(where)
                if not bucket:
                    del self._dependents[uid]

    def put(self, key: Key, namespace: str, name: str, obj: Json, old: Json | None) -> Event:
        """Store a new version (whose resourceVersion the caller set) and publish ADDED or MODIFIED."""
        self._data.setdefault(key, {}).setdefault(namespace, {})[name] = obj
        self._index((key, namespace, name), old, False)
        self._index((key, namespace, name), obj, True)
        kind = "MODIFIED" if old is not None else "ADDED"
        return self._publish(Event(self.rv, kind, key, namespace, obj, old))

    def remove(self, key: Key, namespace: str, name: str, final: Json) -> Event:
        """Remove an object and publish DELETED with its final state."""
        spaces = self._data.get(key, {})
        bucket = spaces.get(namespace, {})
        old = bucket.pop(name, None)
        if not bucket:
            spaces.pop(namespace, None)
        self._index((key, namespace, name), old, False)
        return self._publish(Event(self.rv, "DELETED", key, namespace, final, old))

    def _publish(self, event: Event) -> Event:
        self.dirty = True
        if len(self._history) >= self._history_size:
            self.compacted_rv = self._history.popleft().rv
        self._history.append(event)
        for subscriber in list(self._subscribers.get(event.key, ())):
            subscriber.offer(event)
        return event

    def subscribe(self, subscriber: Subscriber, since_rv: int | None) -> list[Event]:
        """Register a watcher and return the buffered events after `since_rv` (atomically: no await)."""
        backlog: list[Event] = []
        if since_rv is not None:
            if since_rv < self.compacted_rv:
                raise ApiError.gone(f"too old resource version: {since_rv} ({self.compacted_rv + 1})")
            for event in reversed(self._history):
                if event.rv <= since_rv:
                    break
                if event.key == subscriber.key:
                    backlog.append(event)
            backlog.reverse()
        self._subscribers.setdefault(subscriber.key, set()).add(subscriber)
        return backlog

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.get(subscriber.key, set()).discard(subscriber)

    def close_subscribers(self, key: Key | None = None) -> None:
        """End watch streams of one resource (e.g. its CRD went away), or all of them."""
        keys = [key] if key is not None else list(self._subscribers)
        for k in keys:
            for subscriber in list(self._subscribers.pop(k, set())):
                subscriber.close()

    def dump(self) -> list[tuple[Key, Json]]:
        return [(key, obj) for key in self._data for obj in self.items(key)]

    def load(self, rv: int, objects: list[tuple[Key, Json]]) -> None:
        """Replace the contents (from a snapshot); history restarts, so older watches get 410."""
        self._data.clear()
        self._history.clear()
        self._uids.clear()
        self._dependents.clear()
        for key, obj in objects:
            meta = obj["metadata"]
            where = (key, meta.get("namespace", ""), meta["name"])
            self._data.setdefault(key, {}).setdefault(where[1], {})[where[2]] = obj
            self._index(where, obj, True)
        self.rv = self.compacted_rv = rv
        self.dirty = False
