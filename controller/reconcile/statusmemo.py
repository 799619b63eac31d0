"""`StatusMemo`: the status this controller last wrote per object, to see through Kopf's stale bodies.

Kopf applies a handler's status patch after the handler returns, and the resync timer or a queued event
may run the next reconcile on a body read before that patch landed. Kopf writes a handler's annotations
and its status in two requests, so such a body may also carry a newer resourceVersion (the annotations')
with the status as it was before. The DeploymentTask, ChangeRequest and Remediation reconciles pass each
body through `fresh` and `remember` what they wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.core.writelag import STATUS_WRITE_LAG_SECONDS


@dataclass(frozen=True)
class MemoEntry:
    """One object's last write: the body's resourceVersion and status it was computed from, and its result."""

    resource_version: str
    read: dict[str, Any]
    written: dict[str, Any]
    at: float


@dataclass
class StatusMemo:
    """The status this controller last wrote per object, and the body it was computed from.

    A body with the same resourceVersion as the last input is a stale copy: its status is replaced by
    the one written. So is a newer body whose status is still exactly the one the write started from,
    within `in_flight_seconds` of the write: the object changed elsewhere (Kopf's annotations) and the
    status write has not landed yet. Past that, the body is trusted, so a lost write is seen as lost.
    """

    entries: dict[str, MemoEntry] = field(default_factory=dict)
    limit: int = 10_000
    in_flight_seconds: float = STATUS_WRITE_LAG_SECONDS
    clock: Callable[[], float] = time.monotonic

    def fresh(self, body: dict[str, Any]) -> dict[str, Any]:
        meta = body.get("metadata") or {}
        entry = self.entries.get(str(meta.get("uid")))
        if entry is None:
            return body
        if entry.resource_version == str(meta.get("resourceVersion")):
            return {**body, "status": entry.written}
        on_its_way = (body.get("status") or {}) == entry.read and self.clock() - entry.at < self.in_flight_seconds
        return {**body, "status": entry.written} if on_its_way else body

    def remember(self, body: dict[str, Any], patch: dict[str, Any]) -> None:
        """Note the status `patch` writes over `body`'s; a pass that writes nothing keeps the last write's entry."""
        meta = body.get("metadata") or {}
        if not patch and str(meta.get("uid")) in self.entries:
            return
        read = dict(body.get("status") or {})
        status = dict(read)
        for key, value in patch.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        uid = str(meta.get("uid"))
        self.entries.pop(uid, None)
        self.entries[uid] = MemoEntry(str(meta.get("resourceVersion")), read, status, self.clock())
        while len(self.entries) > self.limit:  # the least recently written go first
            self.entries.pop(next(iter(self.entries)))
