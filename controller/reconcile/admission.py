"""Admission of a raw body: parse it into the kind's model, check semantics, thread the correlation ID.

Every kind's reconcile starts here. A spec that parses but makes no sense yields an
`InvalidSpec` outcome naming the field, and nothing else is changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from controller.api.identity import SYSTEM_USER
from controller.api.kinds import KindInfo
from controller.api.labels import CORRELATION_LABEL
from controller.api.meta import new_correlation_id
from controller.api.semantics import SpecProblem, check
from controller.core import conditions
from controller.core.conditions import INVALID_SPEC, READY, current_conditions
from controller.core.outcome import Admitted, AuditNote, EventNote, Outcome


def _pydantic_problems(error: ValidationError) -> list[SpecProblem]:
    problems = []
    for item in error.errors():
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"])
        problems.append(SpecProblem(path.lstrip(".") or "spec", item["msg"]))
    return problems


def correlation_for(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The object's correlation ID, and the labels to add when it has none yet."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    if CORRELATION_LABEL in labels:
        return labels[CORRELATION_LABEL], {}
    wanted = (body.get("spec") or {}).get("correlationId") or new_correlation_id()
    return wanted, {CORRELATION_LABEL: wanted}


def admit(info: KindInfo, body: dict[str, Any]) -> Admitted | list[SpecProblem]:
    """Parse and check; returns the typed resource or the problems found."""
    try:
        resource = info.resource_model.from_body({**body, "spec": body.get("spec") or {}})
    except ValidationError as error:
        only_spec = [p for p in _pydantic_problems(error) if p.field.startswith("spec")]
        return only_spec or _pydantic_problems(error)
    problems = check(info.kind, resource.spec)
    if problems:
        return problems
    correlation_id, labels = correlation_for(body)
    return Admitted(resource=resource, correlation_id=correlation_id, new_labels=labels)


def rejected(info: KindInfo, body: dict[str, Any], problems: list[SpecProblem], now: datetime) -> Outcome:
    """The outcome for a spec that cannot be acted on: InvalidSpec, Ready=False, one Event."""
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    message = "; ".join(str(p) for p in problems)
    conds = current_conditions(body)
    conds = conditions.set_condition(
        conds, conditions.make(INVALID_SPEC, True, "FieldInvalid", message, generation, now)
    )
    conds = conditions.set_condition(conds, conditions.make(READY, False, INVALID_SPEC, message, generation, now))
    desired = {
        "observedGeneration": generation,
        "conditions": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conds],
    }
    if "phase" in info.status_model.model_fields:
        desired["phase"] = None
    status = conditions.delta(body.get("status") or {}, desired)
    changed = bool(status)
    _, labels = correlation_for(body)
    return Outcome(
        status=status,
        labels=labels,
        events=(EventNote("SpecRejected", f"{info.kind} spec rejected: {message}", "Warning"),) if changed else (),
        audits=(AuditNote("SpecRejected", SYSTEM_USER, message),) if changed else (),
    )
