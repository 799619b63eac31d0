"""What a reconcile decided: the status to write, labels to add, Events to post, audit rows.

A frozen value object so handlers stay thin: they apply an Outcome and nothing else. `write_outcome`
is the one way out for every Outcome (the Kopf handlers and the drift sweep both use it): audit
rows first, so nothing happens unaudited, then status and labels, then Events naming the correlation ID.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from controller.api.meta import Condition, CustomResource


@dataclass(frozen=True)
class EventNote:
    """A Kubernetes Event to post on the object."""

    reason: str
    message: str
    type: str = "Normal"


@dataclass(frozen=True)
class AuditNote:
    """An audit row to append (who, what, why), with the object's correlation ID."""

    action: str
    actor: str
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    status: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    events: tuple[EventNote, ...] = ()
    audits: tuple[AuditNote, ...] = ()
    requeue_after_seconds: float | None = None
    #: Conditions set by type on the object as the API server holds it when they are written (a JSON patch
    #: tested against its resourceVersion), for a kind whose `status.conditions` has another writer.
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Admitted:
    """A spec that parsed and made sense: the typed resource and its correlation ID."""

    resource: CustomResource  # type: ignore[type-arg]
    correlation_id: str
    new_labels: dict[str, str]


def with_correlation(message: str, correlation_id: str) -> str:
    """Every Event names the correlation ID, so `kubectl get events` ties it to the audit trail."""
    if not correlation_id or correlation_id in message:
        return message
    return f"{message} [correlation {correlation_id}]"


class OutcomeWriter(Protocol):
    """Where one object's Outcome goes: the audit trail, its status and labels, its Events."""

    async def audit(self, note: AuditNote) -> None: ...

    async def write(self, status: dict[str, Any], labels: dict[str, str], owned: tuple[Condition, ...] = ()) -> bool:
        """Write the status delta, labels and the conditions this writer owns; False when the object is gone."""
        ...

    async def event(self, note: EventNote) -> None: ...


async def write_outcome(outcome: Outcome, writer: OutcomeWriter, correlation_id: str) -> bool:
    """Apply `outcome`: audit rows, then status and labels, then Events; False when the object is gone."""
    for note in outcome.audits:
        await writer.audit(note)
    if (outcome.status or outcome.labels or outcome.conditions) and not await writer.write(
        outcome.status, outcome.labels, outcome.conditions
    ):
        return False
    for event in outcome.events:
        await writer.event(EventNote(event.reason, with_correlation(event.message, correlation_id), event.type))
    return True
