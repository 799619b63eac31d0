"""The reconcile every kind starts from: admit the spec, thread the correlation ID, set the first conditions.

A kind's own reconciler calls `first_visit` and then adds what its engine observed. A Remediation
whose engine is not running in this process (no PostgreSQL or no credentials) stops here
(`reconcile_plain`) with `Ready=Unknown`, which is the honest state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controller.api.identity import SYSTEM_USER
from controller.api.kinds import KindInfo
from controller.api.meta import Condition, ConditionStatus
from controller.core import conditions
from controller.core.conditions import READY, accepted_conditions
from controller.core.outcome import Admitted, AuditNote, EventNote, Outcome
from controller.reconcile.admission import admit, rejected


def first_visit(
    info: KindInfo,
    body: dict[str, Any],
    now: datetime,
    *,
    ready: Condition | None = None,
    status: dict[str, Any] | None = None,
) -> tuple[Admitted | None, Outcome]:
    """Admit `body`; return the typed resource (None if rejected) and the outcome to apply."""
    admitted = admit(info, body)
    if not isinstance(admitted, Admitted):
        return None, rejected(info, body, admitted, now)
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    ready = ready or conditions.make(
        READY,
        ConditionStatus.UNKNOWN,
        "Accepted",
        f"{info.kind} accepted; waiting for its engine",
        generation,
        now,
    )
    ready = ready.model_copy(update={"observed_generation": generation})
    conds = accepted_conditions(body, generation, now, [ready])
    desired: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conds],
        **(status or {}),
    }
    current = body.get("status") or {}
    patch = conditions.delta(current, desired)
    first = not current.get("conditions")
    return admitted, Outcome(
        status=patch,
        labels=admitted.new_labels,
        events=(EventNote("Accepted", f"{info.kind} accepted"),) if first else (),
        audits=(AuditNote("Accepted", SYSTEM_USER, f"{info.kind} accepted"),) if first else (),
    )


def reconcile_plain(info: KindInfo, body: dict[str, Any], now: datetime) -> Outcome:
    """Only admission and the first conditions: for an object whose engine is not running here."""
    _, outcome = first_visit(info, body, now)
    return outcome
