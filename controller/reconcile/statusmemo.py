"""`StatusMemo`: the status this controller last wrote per object, to see through Kopf's stale bodies.

Kopf applies a handler's status patch after the handler returns, and the resync timer or a queued event
may run the next reconcile on a body read before that patch landed. The DeploymentTask and ChangeRequest
reconciles pass each body through `fresh` and `remember` what they wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StatusMemo:
    """The status this controller last wrote per object, and the resourceVersion it was computed from.

    A body with the same resourceVersion as the last input is a stale copy: its status is replaced by
    the one written.
    """

    entries: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    limit: int = 10_000

    def fresh(self, body: dict[str, Any]) -> dict[str, Any]:
        meta = body.get("metadata") or {}
        entry = self.entries.get(str(meta.get("uid")))
        if entry is None or entry[0] != str(meta.get("resourceVersion")):
            return body
        return {**body, "status": entry[1]}

    def remember(self, body: dict[str, Any], patch: dict[str, Any]) -> None:
        meta = body.get("metadata") or {}
        status = dict(body.get("status") or {})
        for key, value in patch.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        uid = str(meta.get("uid"))
        self.entries.pop(uid, None)
        self.entries[uid] = (str(meta.get("resourceVersion")), status)
        while len(self.entries) > self.limit:  # the least recently written go first
            self.entries.pop(next(iter(self.entries)))
