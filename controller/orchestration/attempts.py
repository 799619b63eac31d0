"""Running one slow step across reconciles: dispatch, wait for the report, retry, replace a silent worker.

Pure over `Transitions` and `Facts`. `run_actor_step` is called on every reconcile while a step is
not finished; it returns `done` (with the worker's report) once, `failed` when the step cannot
succeed, else `waiting` after asking to be woken when the step's lease runs out (the worker's
announcement of its report wakes the task first). The step's attempts, key and retry time live in
`status.steps`, so a restarted controller picks up exactly where the last one stopped. While a step's
worker is silent past its lease, `Waiting` says so (`worker unavailable since …`) until a report comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal

from controller.api.deploymenttask import Step, StepName, StepState
from controller.api.meta import ConditionStatus
from controller.orchestration.facts import Facts, TaskView
from controller.orchestration.steps import (
    MAX_ATTEMPTS,
    Dispatch,
    R,
    StepFailure,
    backoff_seconds,
    lease_seconds,
    step_base,
    step_key,
)
from controller.orchestration.transitions import Transitions

WAITING = "Waiting"
WORKER_UNAVAILABLE = "WorkerUnavailable"


def _worker_waiting(t: Transitions) -> Any:
    return next(
        (c for c in t.status.conditions if c.type == WAITING and c.reason == WORKER_UNAVAILABLE and c.status == "True"),
        None,
    )


def worker_unavailable(t: Transitions, step: Step, lease: float, detail: str) -> None:
    """`Waiting: worker unavailable since <dispatch of the silent attempt>` (kept across silent attempts)."""
    earlier = _worker_waiting(t)
    since: datetime = t.now
    if earlier is not None and earlier.last_transition_time is not None:
        since = earlier.last_transition_time
    elif step.next_attempt_at is not None:
        since = step.next_attempt_at - timedelta(seconds=lease)
    t.condition(WAITING, True, WORKER_UNAVAILABLE, f"worker unavailable since {since:%Y-%m-%dT%H:%M:%SZ}: {detail}")
    t.extra_conditions[-1] = t.extra_conditions[-1].model_copy(update={"last_transition_time": since})


def worker_back(t: Transitions, what: str) -> None:
    if _worker_waiting(t) is not None:
        t.condition(WAITING, ConditionStatus.FALSE, "WorkerAvailable", f"A worker reported {what}")


@dataclass(frozen=True)
class StepRun(Generic[R]):
    """Where a slow step stands; `report` is the worker's report on the reconcile that sees it succeed."""

    state: Literal["done", "waiting", "failed"]
    report: R | None = None
    message: str = ""


def label(name: StepName, ring: int | None) -> str:
    return f"{name.value} of ring {ring}" if ring is not None else name.value


def dispatch(t: Transitions, task: TaskView, step: Step, actor: str, kwargs: dict[str, Any]) -> None:
    """Enqueue the step's current attempt (its key is already in `step.key`)."""
    assert step.key is not None
    base = step_base(task.correlation_id, task.uid, step.name, step.ring)
    t.dispatches.append(
        Dispatch(
            actor,
            step.key,
            {
                "namespace": task.namespace,
                "name": task.name,
                "uid": task.uid,
                "key": step.key,
                "step_key": base,
                "ring": step.ring,
                **kwargs,
            },
        )
    )


def start_attempt(
    t: Transitions, task: TaskView, step: Step, actor: str, kwargs: dict[str, Any], tag: str, lease: float
) -> Step:
    attempt = step.attempts + 1
    key = step_key(task.correlation_id, task.uid, step.name, step.ring, attempt, tag)
    step = t.put_step(
        step.model_copy(
            update={
                "state": StepState.RUNNING,
                "attempts": attempt,
                "key": key,
                "started_at": step.started_at or t.now,
                "finished_at": None,
                "next_attempt_at": t.now + timedelta(seconds=lease),
                "message": f"Attempt {attempt} enqueued",
            }
        )
    )
    dispatch(t, task, step, actor, kwargs)
    t.wake_in(lease)  # the worker's announcement wakes the task sooner (operator/driving.py)
    return step


def run_actor_step(
    t: Transitions,
    task: TaskView,
    facts: Facts,
    name: StepName,
    ring: int | None,
    actor: str,
    kwargs: dict[str, Any],
    kind: type[R],
    tag: str = "",
) -> StepRun[R]:
    """Advance one slow step by what the facts say (see the module docstring); `kind` reads its report."""
    step = t.step(name, ring)
    what = label(name, ring)
    lease = lease_seconds(task.spec.monitor.poll_interval_seconds, facts.queued_steps)
    if step.state is StepState.SUCCEEDED:
        return StepRun("done")
    if step.state is StepState.FAILED:
        return StepRun("failed", message=step.message or f"{what} failed")
    if step.state is StepState.RUNNING and step.key:
        claim = facts.claims.get(step.key)
        report = claim.report(kind) if claim is not None else None
        if report is not None:
            return _reported(t, step, report, what)
        if step.next_attempt_at is not None and t.now >= step.next_attempt_at:
            if claim is None:
                # Never picked up (a lost message): enqueue the same key again; a duplicate is harmless.
                worker_unavailable(t, step, lease, f"{what} was not picked up within {lease:.0f}s; sent again")
                step = t.put_step(step.model_copy(update={"next_attempt_at": t.now + timedelta(seconds=lease)}))
                dispatch(t, task, step, actor, kwargs)
            elif step.attempts >= MAX_ATTEMPTS:
                message = f"{what}: attempt {step.attempts} went silent and no attempts are left"
                t.close_step(step, StepState.FAILED, message)
                t.note("StepFailed", message, step=name.value, ring=ring, key=step.key)
                return StepRun("failed", message=message)
            else:
                worker_unavailable(t, step, lease, f"{what} attempt {step.attempts} went silent; starting another")
                t.note(
                    "StepAbandoned",
                    f"{what}: the worker of attempt {step.attempts} went silent for {lease:.0f}s; "
                    f"starting attempt {step.attempts + 1}",
                    step=name.value,
                    ring=ring,
                    key=step.key,
                )
                start_attempt(t, task, step, actor, kwargs, tag, lease)
                return StepRun("waiting")
        t.wake_for_report(step, lease)
        return StepRun("waiting")
    if step.next_attempt_at is not None and t.now < step.next_attempt_at:
        t.wake(step.next_attempt_at)
        return StepRun("waiting")
    step = start_attempt(t, task, step, actor, kwargs, tag, lease)
    t.note("StepStarted", f"{what}: attempt {step.attempts} started", step=name.value, ring=ring, key=step.key)
    return StepRun("waiting")


def _reported(t: Transitions, step: Step, report: R | StepFailure, what: str) -> StepRun[R]:
    worker_back(t, what)
    if not isinstance(report, StepFailure):
        t.close_step(step, StepState.SUCCEEDED, f"Attempt {step.attempts} succeeded")
        return StepRun("done", report)
    if report.transient and step.attempts < MAX_ATTEMPTS:
        delay = backoff_seconds(step.attempts)
        message = f"Attempt {step.attempts} failed: {report.error}; retrying in {delay:.0f}s"
        t.put_step(
            step.model_copy(
                update={
                    "state": StepState.PENDING,
                    "next_attempt_at": t.now + timedelta(seconds=delay),
                    "message": message[:2048],
                }
            )
        )
        t.note("StepRetrying", f"{what}: {message}", step=step.name.value, ring=step.ring, key=step.key)
        t.wake_in(delay)
        return StepRun("waiting")
    kind = "transient, no attempts left" if report.transient else "permanent"
    message = f"{what} failed ({kind}) on attempt {step.attempts}: {report.error}"
    t.close_step(step, StepState.FAILED, message)
    t.note("StepFailed", message, step=step.name.value, ring=step.ring, key=step.key)
    return StepRun("failed", message=message)
