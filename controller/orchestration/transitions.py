"""The working copy of a DeploymentTask's status while `next_step` decides, with its Events and audit rows.

`Transitions` holds the status being built, the messages to enqueue, the ChangeRequest to write and
the wake-up time; every state change goes through `note`, which adds a Kubernetes Event with a
specific reason and an audit row, both carrying the correlation ID. `finish_summary` writes the
conditions (Ready and Succeeded as the summary, Progressing, and the rest) from the final state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controller.api.changerequest import ChangeRequestSpec
from controller.api.deploymenttask import (
    FINAL_PHASES,
    DeploymentTaskStatus,
    RingProgress,
    Step,
    StepName,
    StepState,
    TaskPhase,
)
from controller.api.identity import SYSTEM_USER
from controller.api.meta import Condition, ConditionStatus
from controller.core import conditions
from controller.core.outcome import AuditNote, EventNote
from controller.orchestration.steps import Dispatch

TERMINAL = FINAL_PHASES
#: Phases whose entry the starting step already reports, with the reasons used for that plain entry.
STEP_PHASES = frozenset({TaskPhase.VALIDATING, TaskPhase.DEPLOYING, TaskPhase.MONITORING})
STEP_REASONS = frozenset({"GeneratingEvidence", "Deploying", "Monitoring"})
#: Notes of a step starting: the Event that says the phase it runs in (Validating, Deploying, Monitoring) began.
STEP_START_REASONS = frozenset({"StepStarted", "MonitorStarted"})
WARNING_REASONS = frozenset(
    {
        "GateFailed",
        "RolloutTimedOut",
        "BelowRollbackThreshold",
        "StepRetrying",
        "StepAbandoned",
        "StepFailed",
        "EvidenceTampered",
        "ApprovalEscalated",
        "ChangeRejected",
        "PlanLocked",
        "RollbackStarted",
        "HealthUnavailable",
        "ValidationFailed",
        "StoppedByApproval",
    }
)


@dataclass(frozen=True)
class ChangeRequestWrite:
    """Create (or re-point at a new plan) the task's ChangeRequest."""

    name: str
    namespace: str
    spec: ChangeRequestSpec
    correlation_id: str


@dataclass
class Transitions:
    """Mutable while deciding; `next_step` returns it."""

    status: DeploymentTaskStatus
    now: datetime
    correlation_id: str
    generation: int
    dispatches: list[Dispatch] = field(default_factory=list)
    change_request: ChangeRequestWrite | None = None
    events: list[EventNote] = field(default_factory=list)
    audits: list[AuditNote] = field(default_factory=list)
    wake_at: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)
    extra_conditions: list[Condition] = field(default_factory=list)
    summary_reason: str = ""
    summary_message: str = ""
    idle: bool = False

    # ---- notes ------------------------------------------------------------------------------

    def note(self, reason: str, message: str, **detail: Any) -> None:
        """An audit row for one transition, and an Event when it is a warning or a step starting (the phase
        it runs in begins). Other milestones (IntentValidated, RingDeployed, GatePassed...) are audit rows
        only: an Event each cost a write per ring for what the audit trail and the status already say."""
        self._record(reason, message, reason in WARNING_REASONS or reason in STEP_START_REASONS, detail)

    def _record(self, reason: str, message: str, event: bool, detail: dict[str, Any]) -> None:
        if event:
            kind = "Warning" if reason in WARNING_REASONS else "Normal"
            self.events.append(EventNote(reason, f"{message} [correlation {self.correlation_id}]", kind))
        self.audits.append(AuditNote(reason, SYSTEM_USER, message, {k: v for k, v in detail.items() if v is not None}))

    def wake(self, at: datetime) -> None:
        """Ask to be reconciled again no later than `at`."""
        if self.wake_at is None or at < self.wake_at:
            self.wake_at = at

    def wake_in(self, seconds: float) -> None:
        self.wake(self.now + timedelta(seconds=seconds))

    def wake_for_report(self, step: Step, lease_seconds: float) -> None:
        """Look at `step` again when its lease runs out: its report, announced by the worker, wakes us first."""
        if step.next_attempt_at is not None and step.next_attempt_at > self.now:
            self.wake(step.next_attempt_at)
        else:
            self.wake_in(lease_seconds)

    def condition(self, type_: str, status: bool | ConditionStatus, reason: str, message: str = "") -> None:
        self.extra_conditions.append(conditions.make(type_, status, reason, message, self.generation, self.now))

    # ---- status -----------------------------------------------------------------------------

    def step(self, name: StepName, ring: int | None = None) -> Step:
        found = next((s for s in self.status.steps if s.name is name and s.ring == ring), None)
        return found or Step(name=name, ring=ring)

    def put_step(self, step: Step) -> Step:
        steps = [s for s in self.status.steps if not (s.name is step.name and s.ring == step.ring)]
        steps.append(step)
        self.status = self.status.model_copy(update={"steps": steps})
        return step

    def ring(self, ring: int) -> RingProgress:
        found = next((r for r in self.status.rings if r.ring == ring), None)
        return found or RingProgress(ring=ring)

    def put_ring(self, progress: RingProgress) -> None:
        rings = sorted([r for r in self.status.rings if r.ring != progress.ring] + [progress], key=lambda r: r.ring)
        self.status = self.status.model_copy(update={"rings": rings})

    def set(self, **fields: Any) -> None:
        self.status = self.status.model_copy(update=fields)

    def phase(self, phase: TaskPhase, reason: str, message: str) -> None:
        """Enter `phase`; a terminal phase also closes the task (finishedAt).

        Entering Validating, Deploying or Monitoring is announced by the step that starts there
        (StepStarted, MonitorStarted), so only the other phases get an Event and audit row of their own.
        """
        if self.status.phase is not phase and (phase not in STEP_PHASES or reason not in STEP_REASONS):
            self._record(reason, message, True, {"phase": phase.value})  # a phase change: always an Event
        self.set(phase=phase)
        self.summary_reason, self.summary_message = reason, message
        if phase in TERMINAL and self.status.finished_at is None:
            self.set(finished_at=self.now)

    def close_step(self, step: Step, state: StepState, message: str) -> Step:
        return self.put_step(
            step.model_copy(update={"state": state, "finished_at": self.now, "message": message[:2048]})
        )


def summary_conditions(t: Transitions, existing: list[Condition]) -> list[Condition]:
    """Ready/Succeeded (summary), Progressing, then the step-specific ones the machine set."""
    phase = t.status.phase or TaskPhase.PENDING
    reason = t.summary_reason or phase.value
    message = t.summary_message or (t.status.current_step or "")
    if phase in TERMINAL:
        ok = phase is TaskPhase.SUCCEEDED or (phase is TaskPhase.ROLLED_BACK and reason == "RollbackCompleted")
        summary: ConditionStatus = ConditionStatus.TRUE if ok else ConditionStatus.FALSE
        progressing = conditions.make("Progressing", False, reason, message, t.generation, t.now)
    else:
        summary = ConditionStatus.UNKNOWN
        progressing = conditions.make("Progressing", True, reason, message, t.generation, t.now)
    out = list(existing)
    for cond in (
        conditions.make("Ready", summary, reason, message, t.generation, t.now),
        conditions.make("Succeeded", summary, reason, message, t.generation, t.now),
        progressing,
        *t.extra_conditions,
    ):
        out = conditions.set_condition(out, cond)
    return out
