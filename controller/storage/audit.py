"""The audit trail: one row per state change, keyed by correlation ID, append-only in the database.

Every handler and actor that changes state calls `record_audit`, which also stores the trace id of
the span in scope (migration 0006); `ringpilot trace ID` reads it back with `audit_trail`. The table
refuses UPDATE, DELETE and TRUNCATE by trigger (migration 0001), so an ORM-style bulk update can't
rewrite history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from controller.storage.db import Pool
from controller.telemetry.tracing import current_trace_id

_INSERT = """
INSERT INTO audit_events
    (correlation_id, actor, actor_role, kind, namespace, name, action, reason, detail, trace_id)
VALUES
    (%(correlation_id)s, %(actor)s, %(actor_role)s, %(kind)s, %(namespace)s, %(name)s,
     %(action)s, %(reason)s, %(detail)s, %(trace_id)s)
RETURNING id, at
"""
_SELECT_BY_CORRELATION = """
SELECT id, at, correlation_id, actor, actor_role, kind, namespace, name, action, reason, detail, trace_id
FROM audit_events
WHERE correlation_id = %s
ORDER BY id
LIMIT %s
"""


class AuditEvent(BaseModel):
    """What happened, to what, by whom: the input of `record_audit`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    correlation_id: str = Field(min_length=1, description="Correlation ID shared by everything one intent touches")
    actor: str = Field(min_length=1, description="User name, or `system:<component>` for the operator itself")
    actor_role: str | None = Field(None, description="The actor's Ringpilot role when the action was taken")
    kind: str | None = Field(None, description="Kind of the object acted on, e.g. `DeploymentTask`")
    namespace: str | None = Field(None, description="Namespace of the object acted on")
    name: str | None = Field(None, description="Name of the object acted on")
    action: str = Field(min_length=1, description="What happened, CamelCase, e.g. `StepStarted`")
    reason: str | None = Field(None, description="Why, in words a reviewer understands")
    detail: dict[str, Any] | None = Field(None, description="Structured extra facts (JSON)")
    trace_id: str | None = Field(
        None, pattern=r"^[0-9a-f]{32}$", description="Trace of the change; `record_audit` takes the current one"
    )


class AuditRecord(AuditEvent):
    """An `AuditEvent` as stored: with its sequence number and database timestamp."""

    id: int = Field(description="Monotonic sequence number of the event")
    at: datetime = Field(description="When the database recorded the event")


async def record_audit(pool: Pool, event: AuditEvent) -> AuditRecord:
    """Append `event` to the audit trail in its own transaction and return it as stored."""
    if event.trace_id is None:
        event = event.model_copy(update={"trace_id": current_trace_id()})
    params = event.model_dump()
    params["detail"] = Jsonb(event.detail) if event.detail is not None else None
    async with pool.connection() as conn:
        cursor = await conn.execute(_INSERT, params)
        row = await cursor.fetchone()
    assert row is not None  # INSERT ... RETURNING always returns the row
    return AuditRecord.model_validate({**event.model_dump(), **row})


async def audit_trail(pool: Pool, correlation_id: str, *, limit: int = 1000) -> list[AuditRecord]:
    """Events recorded under `correlation_id`, oldest first, at most `limit` of them."""
    async with pool.connection() as conn:
        cursor = await conn.execute(_SELECT_BY_CORRELATION, (correlation_id, limit))
        rows = await cursor.fetchall()
    return [AuditRecord.model_validate(row) for row in rows]
