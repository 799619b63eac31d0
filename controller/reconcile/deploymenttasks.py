"""The DeploymentTask reconcile: admit, gather facts, let the state machine decide, carry out, write status.

Registered in controller/reconcile/reconcilers.py. Level-based: every call recomputes from spec +
status + what it observes, and asks to be called again (`requeue_after_seconds`) while the task is
in flight, so long waits (approval, soak, polls, retries) are persisted state, never sleeping code.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from controller.api.deploymenttask import DeploymentTask, DeploymentTaskStatus, TaskPhase
from controller.api.identity import SYSTEM_USER
from controller.api.kinds import KindInfo
from controller.api.labels import OBJECT_APP_LABEL
from controller.api.meta import Condition
from controller.core.conditions import accepted_conditions, current_conditions, delta
from controller.core.outcome import Admitted, AuditNote, EventNote, Outcome
from controller.orchestration.facts import TaskView
from controller.orchestration.machine import next_step
from controller.orchestration.observing import World, carry_out, check_evidence, gather, wants_evidence_check
from controller.orchestration.transitions import Transitions, summary_conditions
from controller.reconcile.admission import admit, rejected
from controller.reconcile.deps import Deps

logger = logging.getLogger(__name__)

#: Shortest and longest requeue the task's loop is given (operator/driving.py): a task waiting on a
#: ChangeRequest's decisions or a long soak looks again at least every MAX_REQUEUE_SECONDS.
MIN_REQUEUE_SECONDS = 0.2
MAX_REQUEUE_SECONDS = 10.0


def status_fields(status: DeploymentTaskStatus) -> dict[str, Any]:
    """Top-level status keys as written: nested None fields dropped, top-level None kept (it deletes)."""
    dumped = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    for name, info in DeploymentTaskStatus.model_fields.items():
        alias = info.alias or name
        if getattr(status, name) is None:
            dumped[alias] = None
    dumped.pop("conditions", None)
    dumped.pop("observedGeneration", None)
    return dumped


def view_of(admitted: Admitted, body: dict[str, Any]) -> TaskView:
    task = admitted.resource
    assert isinstance(task, DeploymentTask)
    meta = task.metadata
    return TaskView(
        namespace=meta.namespace or "default",
        name=meta.name,
        uid=meta.uid or meta.name,
        generation=meta.generation,
        correlation_id=admitted.correlation_id,
        spec=task.spec,
        status=task.status,
        annotations=dict(meta.annotations),
    )


def outcome_of(body: dict[str, Any], admitted: Admitted, t: Transitions, generation: int, now: datetime) -> Outcome:
    current = body.get("status") or {}
    first = not current.get("conditions")
    if t.idle and current.get("observedGeneration") == generation:
        conds: list[Condition] = current_conditions(body)  # a finished task read again keeps what it said
    else:
        conds = accepted_conditions(body, generation, now)
    if not t.idle:
        conds = summary_conditions(t, conds)
    desired = {
        **status_fields(t.status),
        "observedGeneration": generation,
        "conditions": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conds],
    }
    events = list(t.events)
    audits = list(t.audits)
    if first:
        events.insert(0, EventNote("Accepted", f"DeploymentTask accepted [correlation {admitted.correlation_id}]"))
        audits.insert(0, AuditNote("Accepted", SYSTEM_USER, "DeploymentTask accepted"))
    labels = dict(admitted.new_labels)
    task = admitted.resource
    assert isinstance(task, DeploymentTask)
    if task.metadata.labels.get(OBJECT_APP_LABEL) != task.spec.app:
        labels[OBJECT_APP_LABEL] = task.spec.app
    requeue = None
    if t.wake_at is not None:
        requeue = min(MAX_REQUEUE_SECONDS, max(MIN_REQUEUE_SECONDS, (t.wake_at - now).total_seconds()))
    return Outcome(
        status=delta(current, desired),
        labels=labels,
        events=tuple(events),
        audits=tuple(audits),
        requeue_after_seconds=requeue,
    )


def rejected_task(info: KindInfo, body: dict[str, Any], problems: list[Any], now: datetime) -> Outcome:
    """InvalidSpec ends a task that has no plan yet (phase Failed, docs/domain.md §1): it blocks nothing.

    A task whose spec is made invalid after it was validated keeps its phase (what it deployed stays
    in force) and waits for a valid spec. Changing the spec of a Failed one judges it again.
    """
    outcome = rejected(info, body, problems, now)
    current = body.get("status") or {}
    status = dict(outcome.status)
    status.pop("phase", None)
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    if current.get("plan") is None:
        if current.get("phase") != TaskPhase.FAILED.value:
            status["phase"] = TaskPhase.FAILED.value
            status["finishedAt"] = now.isoformat().replace("+00:00", "Z")
        if current.get("validatedGeneration") != generation:
            status["validatedGeneration"] = generation
        if current.get("currentStep") is not None:
            status["currentStep"] = None
    return replace(outcome, status=status)


async def reconcile_with(
    world: World | None, info: KindInfo, body: dict[str, Any], deps: Deps, now: datetime
) -> Outcome:
    admitted = admit(info, body)
    if not isinstance(admitted, Admitted):
        return rejected_task(info, body, admitted, now)
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    task = view_of(admitted, body)
    if world is None:
        t = Transitions(task.status, now, task.correlation_id, generation)
        t.summary_reason, t.summary_message = (
            "NotOrchestrated",
            ("This controller has no PostgreSQL or Kubernetes credentials to run DeploymentTasks"),
        )
        return outcome_of(body, admitted, t, generation, now)
    created = str((body.get("metadata") or {}).get("creationTimestamp") or "")
    facts = await gather(world, task, deps.policy, now, created)
    t = next_step(task, facts)
    if wants_evidence_check(task, t, facts):  # decide again with the evidence pack read
        t = next_step(task, await check_evidence(world, t, facts))
    await carry_out(world, task, t)
    return outcome_of(body, admitted, t, generation, now)


async def reconcile_deployment_task(info: KindInfo, body: dict[str, Any], deps: Deps, now: datetime) -> Outcome:
    """The registered reconcile: the world comes from `deps.orchestration` (None when not configured)."""
    runtime = deps.orchestration
    if runtime is None:
        return await reconcile_with(None, info, body, deps, now)
    body = runtime.memo.fresh(body)
    outcome = await reconcile_with(runtime.world, info, body, deps, now)
    runtime.memo.remember(body, outcome.status)
    return outcome
