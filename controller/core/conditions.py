"""Kubernetes-style conditions: set by type, keep transition times, compute status deltas.

Holds the shared condition types (`READY`, `INVALID_SPEC`) and the helpers reconcilers write
`status.conditions` with, the way the API conventions ask (one entry per type, lastTransitionTime
only moves when status changes); `accepted_conditions` clears InvalidSpec once a spec is accepted.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from controller.api.meta import Condition, ConditionStatus, utcnow

#: The condition every kind has: the object is well-formed and its engine is content with it.
READY = "Ready"
#: Set when a spec parses but makes no sense; its message names the field.
INVALID_SPEC = "InvalidSpec"


def make(
    type_: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str = "",
    generation: int | None = None,
    now: datetime | None = None,
) -> Condition:
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:2048],
        observed_generation=generation,
        last_transition_time=now or utcnow(),
    )


def set_condition(conditions: list[Condition], new: Condition) -> list[Condition]:
    """Replace by type; keep lastTransitionTime when the status did not change."""
    old = find(conditions, new.type)
    if old is not None and old.status == new.status:
        new = new.model_copy(update={"last_transition_time": old.last_transition_time})
    return [c for c in conditions if c.type != new.type] + [new]


def find(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: list[Condition], type_: str) -> bool:
    cond = find(conditions, type_)
    return cond is not None and cond.status is ConditionStatus.TRUE


def delta(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """The top-level status keys whose values differ (a merge patch; None deletes)."""
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        if current.get(key) != value:
            patch[key] = value
    return patch


def current_conditions(body: dict[str, Any]) -> list[Condition]:
    """The object's conditions as models; an entry that does not parse is dropped."""
    raw = (body.get("status") or {}).get("conditions") or []
    out = []
    for item in raw:
        try:
            out.append(Condition.model_validate(item))
        except ValidationError:
            continue
    return out


def accepted_conditions(
    body: dict[str, Any], generation: int, now: datetime, extra: list[Condition] | None = None
) -> list[Condition]:
    """Current conditions with InvalidSpec cleared (if it was set) and `extra` applied."""
    conds = current_conditions(body)
    if find(conds, INVALID_SPEC) is not None:
        conds = set_condition(
            conds,
            make(INVALID_SPEC, ConditionStatus.FALSE, "SpecValid", "", generation, now),
        )
    for cond in extra or []:
        conds = set_condition(conds, cond)
    return conds


def merge_into(body: MutableMapping[str, Any], owned: Sequence[Condition]) -> None:
    """Set `owned` by type in `body`'s status.conditions, in place; every other entry stays as it is."""
    status = body.setdefault("status", {})
    raw: list[dict[str, Any]] = list(status.get("conditions") or [])
    for cond in owned:
        new = cond.model_dump(mode="json", by_alias=True, exclude_none=True)
        at = next((i for i, c in enumerate(raw) if c.get("type") == cond.type), None)
        if at is None:
            raw.append(new)
            continue
        if raw[at].get("status") == new["status"] and "lastTransitionTime" in raw[at]:
            new["lastTransitionTime"] = raw[at]["lastTransitionTime"]
        raw[at] = new
    status["conditions"] = raw
