"""What a reconcile decided: the status to write, labels to add, Events to post, audit rows.

A frozen value object so handlers stay thin: they apply an Outcome and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
