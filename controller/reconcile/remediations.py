"""The Remediation reconcile: admit, gather facts, let the state machine decide, carry out, compose.

Admission first (a contradictory spec is Denied); then `effects.gather` -> `progression.next_step`
(pure) -> `effects.carry_out`, and `compose` turns the transitions into the Outcome that
controller/operator/handlers.py applies. A body older than the status this controller last wrote
(Kopf applies a patch after the handler returns) is read with that status, so a timer that runs
right after a transition does not take it again. Without the remediation runtime (no PostgreSQL or
no Kubernetes credentials) a Remediation is only admitted and waits with Ready=Unknown.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from controller.api.identity import SYSTEM_USER
from controller.api.kinds import KindInfo
from controller.api.meta import Condition, ConditionStatus
from controller.api.remediation import Remediation, RemediationPhase, RemediationStatus
from controller.core import conditions
from controller.core.conditions import READY, accepted_conditions
from controller.core.outcome import Admitted, AuditNote, EventNote, Outcome
from controller.reconcile.admission import admit, rejected
from controller.reconcile.deps import Deps
from controller.reconcile.firstvisit import reconcile_plain
from controller.remediation.effects import carry_out, gather
from controller.remediation.outcomes import RemediationTransitions
from controller.remediation.ports import RemediationPorts
from controller.remediation.progression import next_step
from controller.remediation.situation import RemediationView


def denied_spec(info: KindInfo, body: dict[str, Any], problems: list[Any], now: datetime) -> Outcome:
    """InvalidSpec (e.g. an action that does not fit the drift type) is Denied; nothing is touched."""
    outcome = rejected(info, body, problems, now)
    current = body.get("status") or {}
    status = dict(outcome.status)
    status.pop("phase", None)
    if current.get("phase") != RemediationPhase.DENIED.value:
        message = "; ".join(str(p) for p in problems)
        status["phase"] = RemediationPhase.DENIED.value
        status["policy"] = {"allowed": False, "reason": message[:1024], "rule": "InvalidSpec"}
    return replace(outcome, status=status)


def view_of(admitted: Admitted) -> RemediationView:
    rem = admitted.resource
    assert isinstance(rem, Remediation)
    namespace = rem.metadata.namespace or "default"
    return RemediationView(
        namespace=namespace,
        name=rem.metadata.name,
        uid=rem.metadata.uid or f"{namespace}/{rem.metadata.name}",
        correlation_id=admitted.correlation_id,
        spec=rem.spec,
        status=rem.status,
        stored_uid=rem.metadata.uid,
    )


def status_fields(status: RemediationStatus) -> dict[str, Any]:
    """Top-level status keys as written: nested None fields dropped, top-level None kept (it deletes)."""
    dumped = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    for name, info in RemediationStatus.model_fields.items():
        if getattr(status, name) is None:
            dumped[info.alias or name] = None
    dumped.pop("conditions", None)
    dumped.pop("observedGeneration", None)
    return dumped


def compose(body: dict[str, Any], admitted: Admitted, t: RemediationTransitions, now: datetime) -> Outcome:
    """The Outcome of `t`: status delta (observedGeneration, conditions, fields), labels, notes."""
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    extra = []
    if t.ready is not None:
        status, reason, message = t.ready
        extra.append(conditions.make(READY, status, reason, message, generation, now))
    conds = accepted_conditions(body, generation, now, extra)
    if conditions.find(conds, READY) is None:
        accepted = conditions.make(READY, ConditionStatus.UNKNOWN, "Accepted", "Remediation accepted", generation, now)
        conds = conditions.set_condition(conds, accepted)
    desired = {
        **({} if t.idle else status_fields(t.status)),
        "observedGeneration": generation,
        "conditions": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conds],
    }
    current = body.get("status") or {}
    first = not current.get("conditions")
    events = t.events if not first else (EventNote("Accepted", "Remediation accepted"), *t.events)
    return Outcome(
        status=conditions.delta(current, desired),
        labels=admitted.new_labels,
        events=events,
        audits=t.audits,
        requeue_after_seconds=t.requeue_after_seconds,
    )


async def reconcile_with(
    ports: RemediationPorts, info: KindInfo, body: dict[str, Any], deps: Deps, now: datetime
) -> Outcome:
    """One pass: admit, gather, decide, carry out, compose (no status memo; tests drive this)."""
    admitted = admit(info, body)
    if not isinstance(admitted, Admitted):
        return denied_spec(info, body, admitted, now)
    view, lock = locked(view_of(admitted), body, now)
    facts = await gather(ports, view, now)
    t = await carry_out(ports, view, next_step(view, facts, ports.policy), now)
    outcome = compose(body, admitted, t, now)
    return outcome if lock is None else with_lock(outcome, lock, body, now)


def locked(view: RemediationView, body: dict[str, Any], now: datetime) -> tuple[RemediationView, str | None]:
    """The view with the spec the Remediation acted on (docs/domain.md §6.4), and what was edited since.

    Once an attempt started, `status.lockedSpec` is the spec: an edit is ignored and reported
    (`SpecLocked`), as `PlanLocked` does for DeploymentTasks.
    """
    held = view.status.locked_spec
    if held is None:
        return view, None
    mine, theirs = held.model_dump(mode="json", by_alias=True), view.spec.model_dump(mode="json", by_alias=True)
    changed = [f"spec.{k}" for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]
    view = replace(view, spec=held)
    if not changed:
        return view, None
    return view, (
        f"{', '.join(changed)} changed after the fix started; ignored: this Remediation acts on "
        f"Assignment {held.assignment} as it was asked - open a new Remediation for anything else"
    )


def with_lock(outcome: Outcome, message: str, body: dict[str, Any], now: datetime) -> Outcome:
    """Add the SpecLocked condition, and its Event and audit row the first time for this generation."""
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    cond = conditions.make("SpecLocked", True, "SpecChangedAfterActing", message, generation, now)
    raw = outcome.status.get("conditions")
    current = [c for c in conditions.current_conditions(body)]
    base = [Condition.model_validate(c) for c in raw] if raw is not None else current
    merged = conditions.set_condition(base, cond)
    status = {
        **outcome.status,
        "conditions": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in merged],
    }
    was = conditions.find(current, "SpecLocked")
    if was is not None and was.status is ConditionStatus.TRUE and was.observed_generation == generation:
        return replace(outcome, status=status)
    return replace(
        outcome,
        status=status,
        events=(*outcome.events, EventNote("SpecLocked", message, "Warning")),
        audits=(*outcome.audits, AuditNote("SpecLocked", SYSTEM_USER, message)),
    )


async def reconcile_remediation(info: KindInfo, body: dict[str, Any], deps: Deps, now: datetime) -> Outcome:
    """The registered reconcile: the ports come from `deps.remediation` (None when not configured)."""
    runtime = deps.remediation
    if runtime is None:
        admitted = admit(info, body)
        if not isinstance(admitted, Admitted):
            return denied_spec(info, body, admitted, now)
        return reconcile_plain(info, body, now)
    body = runtime.memo.fresh(body)
    outcome = await reconcile_with(runtime.ports, info, body, deps, now)
    runtime.memo.remember(body, outcome.status)
    return outcome
