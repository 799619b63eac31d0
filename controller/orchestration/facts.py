"""What `next_step` decides from: the task as read, and the facts the reconcile observed for it.

Pure values. The reconcile (controller/reconcile/deploymenttasks.py) gathers them with as few calls
as it can: validation facts only while a plan is missing or stale, claims only for the keys the
status says are running, the ChangeRequest only once the task has one, and the evidence pack only for
a decision that needs it (observing.wants_evidence_check). Tests build them by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from controller.api.changerequest import ChangePhase, DecisionOutcome
from controller.api.deploymenttask import (
    ApprovalConditions,
    DeploymentTaskSpec,
    DeploymentTaskStatus,
    StepName,
    StepState,
)
from controller.api.policy import Policy
from controller.orchestration.ownership import CabCount, verdict_for
from controller.orchestration.steps import Claim


@dataclass(frozen=True)
class TaskView:
    """The DeploymentTask as the reconcile read it."""

    namespace: str
    name: str
    uid: str
    generation: int
    correlation_id: str
    spec: DeploymentTaskSpec
    status: DeploymentTaskStatus
    annotations: Mapping[str, str] = field(default_factory=dict)

    def running_keys(self) -> list[str]:
        """Keys of steps whose worker report the machine waits for."""
        return [s.key for s in self.status.steps if s.key and s.state is StepState.RUNNING]

    def deploy_started(self) -> bool:
        return any(s.name is StepName.DEPLOY and s.attempts > 0 for s in self.status.steps)


@dataclass(frozen=True)
class Validation:
    """Facts ValidateIntent needs: the app's targets per ring, other tasks changing it, rollback candidates."""

    targets: tuple[int, ...]
    conflict: str | None = None
    rollback_targets: int | None = None


@dataclass(frozen=True)
class ChangeRequestView:
    """The task's ChangeRequest as the CAB reconcile last evaluated it."""

    name: str
    spec_digest: str
    phase: ChangePhase | None
    status_digest: str | None
    conditions: ApprovalConditions | None
    approvals: int
    required: int
    outcomes: tuple[DecisionOutcome, ...] = ()

    def count(self, digest: str, submitter: str, required: int) -> CabCount | None:
        """The decision on plan `digest`, counted against the task's own submitter and quorum (None: not yet).

        Nothing of the ChangeRequest's spec is trusted: only the judged outcomes, re-checked here.
        """
        if self.status_digest != digest:
            return None
        return verdict_for(list(self.outcomes), self.phase, digest, submitter, required)


@dataclass(frozen=True)
class Facts:
    now: datetime
    policy: Policy
    validation: Validation | None = None
    claims: Mapping[str, Claim] = field(default_factory=dict)
    change_request: ChangeRequestView | None = None
    #: True when the stored evidence pack was read for this decision; `evidence_problem` is what it found.
    evidence_checked: bool = False
    evidence_problem: str | None = None
    #: Messages waiting in the steps queue (the lease of a step sent now grows with it).
    queued_steps: int = 0
