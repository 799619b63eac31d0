"""record_audit appends to the trail; audit_trail reads one correlation ID back in order."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from controller.storage.audit import AuditEvent, audit_trail, record_audit
from controller.storage.db import Pool


async def test_an_event_is_stored_and_read_back(db_pool: Pool) -> None:
    event = AuditEvent(
        correlation_id="c-1",
        actor="dev-publisher",
        actor_role="publisher",
        kind="DeploymentTask",
        namespace="default",
        name="vpn-1-2-3",
        action="TaskCreated",
        reason="Ship 1.2.3",
        detail={"maxRing": 2, "targets": ["a", "b"]},
    )
    stored = await record_audit(db_pool, event)
    assert stored.id > 0
    assert stored.at.tzinfo is not None
    assert await audit_trail(db_pool, "c-1") == [stored]


async def test_the_trail_is_ordered_and_filtered_by_correlation_id(db_pool: Pool) -> None:
    for n in range(3):
        for correlation_id, action in (("c-a", f"Step{n}"), ("c-b", f"Other{n}")):
            event = AuditEvent(correlation_id=correlation_id, actor="system:ringpilot", action=action)
            await record_audit(db_pool, event)
    trail = await audit_trail(db_pool, "c-a")
    assert [e.action for e in trail] == ["Step0", "Step1", "Step2"]
    assert all(e.detail is None and e.kind is None for e in trail)
    assert [e.action for e in await audit_trail(db_pool, "c-a", limit=2)] == ["Step0", "Step1"]
    assert await audit_trail(db_pool, "c-unknown") == []


def test_an_event_needs_who_what_and_a_correlation_id() -> None:
    with pytest.raises(ValidationError) as raised:
        AuditEvent(correlation_id="", actor="", action="")
    assert {e["loc"][0] for e in raised.value.errors()} == {"correlation_id", "actor", "action"}
    with pytest.raises(ValidationError):
        AuditEvent(correlation_id="c", actor="a", action="x", colour="red")  # type: ignore[call-arg]
