"""How one drift check's Outcome reaches its Assignment: the `OutcomeWriter` of the drift sweep.

The sweep hands `core.outcome.write_outcome` a `CheckWriter`, so its writes go out in the same order
as the Kopf handlers': audit rows first (logged with the correlation ID), then the status subresource,
then Events. `written` keeps the Assignment as the API server returned it (None when it was gone).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.api.meta import Condition
from controller.core.outcome import AuditNote, EventNote
from controller.remediation.cluster import Cluster, ObjectRef
from controller.storage.audit import AuditEvent

logger = logging.getLogger(__name__)

AuditSink = Callable[[AuditEvent], Awaitable[Any]]


@dataclass
class CheckWriter:
    """`OutcomeWriter` for one checked Assignment."""

    cluster: Cluster
    audit_sink: AuditSink | None
    ref: ObjectRef
    correlation_id: str
    now: datetime
    written: dict[str, Any] | None = None

    async def audit(self, note: AuditNote) -> None:
        ref = self.ref
        logger.info(
            "%s on Assignment %s/%s: %s (correlation %s)",
            note.action,
            ref.namespace,
            ref.name,
            note.reason,
            self.correlation_id,
        )
        if self.audit_sink is not None:
            await self.audit_sink(
                AuditEvent(
                    correlation_id=self.correlation_id,
                    actor=note.actor,
                    kind="Assignment",
                    namespace=ref.namespace,
                    name=ref.name,
                    action=note.action,
                    reason=note.reason,
                    detail=note.detail or None,
                )
            )

    async def write(self, status: dict[str, Any], labels: dict[str, str], owned: tuple[Condition, ...] = ()) -> bool:
        if owned:
            raise ValueError("the drift sweep writes an Assignment's conditions in its status, not as owned ones")
        self.written = await self.cluster.patch_assignment_status(self.ref.namespace, self.ref.name, status)
        return self.written is not None

    async def event(self, note: EventNote) -> None:
        await self.cluster.post_event(self.ref, note.reason, note.message, note.type, self.now)
