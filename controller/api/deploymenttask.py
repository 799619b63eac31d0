"""The DeploymentTask kind: one intent to ship `app@version` through rings up to `maxRing`.

The controller drives it through a fixed chain of steps (ValidateIntent, GenerateEvidence,
SubmitChangeRequest, AwaitApproval, Deploy, Monitor) and records every step in status.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from controller.api.meta import (
    CamelModel,
    Condition,
    CorrelationId,
    CustomResource,
    DnsLabel,
    Message,
    Ring,
    StatusModel,
    UserName,
)
from controller.api.policy import Weekday
from controller.api.risk_inputs import RiskInputs

#: An OCI image tag: what a version must look like.
ImageTag = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
#: An image repository without tag, e.g. registry.example.com/team/web.
ImageRepository = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?$")
]


class Action(StrEnum):
    DEPLOY = "Deploy"
    ROLLBACK = "Rollback"


class PlaneName(StrEnum):
    KUBERNETES = "kubernetes"
    SIMULATED = "simulated"


class StepName(StrEnum):
    VALIDATE_INTENT = "ValidateIntent"
    GENERATE_EVIDENCE = "GenerateEvidence"
    SUBMIT_CHANGE_REQUEST = "SubmitChangeRequest"
    AWAIT_APPROVAL = "AwaitApproval"
    DEPLOY = "Deploy"
    MONITOR = "Monitor"
    ROLLBACK = "Rollback"


class StepState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class TaskPhase(StrEnum):
    PENDING = "Pending"
    VALIDATING = "Validating"
    AWAITING_APPROVAL = "AwaitingApproval"
    DEPLOYING = "Deploying"
    MONITORING = "Monitoring"
    SUCCEEDED = "Succeeded"
    STOPPED = "Stopped"
    FAILED = "Failed"
    EXPIRED = "Expired"
    REJECTED = "Rejected"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    CANCELLED = "Cancelled"


#: Phases after which a DeploymentTask changes nothing more.
FINAL_PHASES = frozenset(
    {
        TaskPhase.SUCCEEDED,
        TaskPhase.STOPPED,
        TaskPhase.FAILED,
        TaskPhase.EXPIRED,
        TaskPhase.REJECTED,
        TaskPhase.ROLLED_BACK,
        TaskPhase.CANCELLED,
    }
)


class GateResult(StrEnum):
    PENDING = "Pending"
    SOAKING = "Soaking"
    PASSED = "Passed"
    FAILED = "Failed"


class ApprovalSettings(CamelModel):
    """How long the task waits for a CAB decision."""

    max_wait_seconds: int = Field(
        3600,
        ge=5,
        le=30 * 24 * 3600,
        description="The ChangeRequest's review deadline is this long after submission; then Expired.",
    )


class MonitorSettings(CamelModel):
    """How each ring is watched after it is deployed."""

    poll_interval_seconds: int = Field(60, ge=1, le=3600, description="Health is polled this often.")
    soak_seconds: int = Field(
        0, ge=0, le=30 * 24 * 3600, description="Minimum healthy observation before the ring's gate is evaluated."
    )
    deploy_timeout_seconds: int = Field(
        900, ge=10, le=24 * 3600, description="A ring that is not fully rolled out within this time fails its gate."
    )


class ChangeWindow(CamelModel):
    """A time window in which the change may proceed."""

    days: list[Weekday] = Field(
        default_factory=list, max_length=7, description="Days of week (Mon..Sun); empty means every day."
    )
    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="Start time, HH:MM.")
    end: str = Field(
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="End time, HH:MM; before start means the window closes the next day.",
    )
    time_zone: str = Field("UTC", max_length=64, description="IANA time zone, e.g. Europe/Berlin.")


class ApprovalConditions(CamelModel):
    """Machine-readable limits an approval binds the rollout to."""

    max_ring: Ring | None = Field(None, description="Stop the rollout after this ring.")
    min_success_rate: float | None = Field(None, ge=0, le=1, description="Gate every ring at this success rate.")
    rollback_below: float | None = Field(None, ge=0, le=1, description="Roll back when success falls below this.")
    min_soak_seconds: int | None = Field(None, ge=0, description="Soak every ring at least this long.")
    windows: list[ChangeWindow] = Field(
        default_factory=list, max_length=8, description="Deploy a ring only inside one of these windows."
    )


class GateOverride(CamelModel):
    """Tighter (or, with policy, looser) gate for one ring than the policy file's."""

    ring: Ring = Field(description="The ring this override applies to.")
    success_threshold: float | None = Field(
        None, ge=0, le=1, description="Fraction of targets that must be healthy, e.g. 0.99."
    )
    soak_seconds: int | None = Field(None, ge=0, description="Minimum soak in this ring.")


class DeploymentTaskSpec(CamelModel):
    """Ship app@version through rings 0..maxRing, or roll the app back."""

    app: DnsLabel = Field(description="The app: workloads labelled app.kubernetes.io/name=<app>.")
    version: ImageTag = Field(description="The version to ship: an image tag, e.g. 1.4.2.")
    artifact: ImageRepository | None = Field(
        None, description="Image repository; defaults to the repository the workloads already run."
    )
    action: Action = Field(Action.DEPLOY, description="Deploy, or Rollback to the previous recorded version.")
    max_ring: Ring = Field(description="Highest ring to reach: 0 Lab, 1 Canary, 2 Pilot, 3 Department, 4 Global.")
    plane: PlaneName = Field(PlaneName.KUBERNETES, description="Execution plane that carries out the rollout.")
    risk: RiskInputs = Field(default_factory=RiskInputs, description="Inputs of the deterministic risk model.")
    approval: ApprovalSettings = Field(default_factory=ApprovalSettings, description="CAB wait settings.")
    monitor: MonitorSettings = Field(default_factory=MonitorSettings, description="Per-ring monitoring.")
    gates: list[GateOverride] = Field(default_factory=list, max_length=5, description="Per-ring gate overrides.")
    cancel: bool = Field(False, description="Stop at the next safe point.")
    requested_by: UserName | None = Field(None, description="Who asked for this change.")
    reason: Message | None = Field(None, description="Why: shown to approvers and in the audit trail.")
    correlation_id: CorrelationId | None = Field(None, description="Correlation ID; generated when absent.")


class Step(StatusModel):
    """One step of the chain (Deploy, Monitor and Rollback once per ring)."""

    name: StepName
    ring: int | None = Field(None, ge=0, le=4, description="The ring, for per-ring steps.")
    state: StepState = StepState.PENDING
    attempts: int = Field(0, ge=0)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_attempt_at: datetime | None = None
    message: str | None = Field(None, max_length=2048)
    key: str | None = Field(None, max_length=512, description="Idempotency key of the current attempt.")


class RiskFactor(StatusModel):
    """One factor's contribution to the score."""

    name: str = Field(max_length=64)
    weight: int = Field(ge=0, le=100)
    normalized: float = Field(ge=0, le=1)
    contribution: float = Field(ge=0, le=100)
    rationale: str = Field("", max_length=512)


class RiskAssessment(StatusModel):
    """The deterministic risk assessment of the task."""

    score: int = Field(ge=0, le=100)
    model_version: str = Field(max_length=16)
    label: str = Field(max_length=32, description="AUTOMATED_ALLOWED, CAB_REQUIRED or PRIVILEGED_TOOLING.")
    cab_required: bool
    cab_from_ring: int | None = Field(None, ge=0, le=4, description="First ring that needs CAB approval.")
    blast_radius_class: str | None = Field(None, max_length=32, description="Classifier result; sets the quorum.")
    required_approvals: int | None = Field(None, ge=0, le=5, description="CAB quorum for this change.")
    privileged: bool = Field(False, description="Privileged tooling (spec or policy.risk.privilegedApps).")
    factors: list[RiskFactor] = Field(default_factory=list, max_length=16)


class EvidenceRef(StatusModel):
    """An immutable evidence pack stored in PostgreSQL."""

    id: str = Field(max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class RingProgress(StatusModel):
    """Rollout progress in one ring."""

    ring: int = Field(ge=0, le=4)
    targets: int = Field(0, ge=0)
    updated: int = Field(0, ge=0)
    healthy: int = Field(0, ge=0)
    failed: int = Field(0, ge=0)
    success_rate: float | None = Field(None, ge=0, le=1)
    gate: GateResult = GateResult.PENDING
    threshold: float | None = Field(None, ge=0, le=1)
    deployed_at: datetime | None = None
    complete_at: datetime | None = Field(None, description="When every target ran the new version.")
    healthy_since: datetime | None = None
    polls: int = Field(0, ge=0)
    last_polled_at: datetime | None = None
    rolled_back: bool = False
    poll_errors: int = Field(0, ge=0, description="Consecutive health polls that failed.")
    message: str | None = Field(None, max_length=1024)


class PlanRecord(StatusModel):
    """The plan validated for one generation of the spec; approvals bind to its digest."""

    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    generation: int = Field(ge=0)
    app: str = Field(max_length=63)
    version: str = Field(max_length=128)
    artifact: str | None = Field(None, max_length=255)
    action: Action
    plane: PlaneName
    max_ring: int = Field(ge=0, le=4)
    targets: list[int] = Field(default_factory=list, max_length=5, description="Targets per ring 0..maxRing.")
    submitter: str = Field(max_length=253)
    validated_at: datetime | None = None


class ApprovalRecord(StatusModel):
    """How the task is approved: automatically (with the rule) or by a ChangeRequest."""

    mode: str = Field(max_length=16, description="Auto or ChangeRequest.")
    rule: str = Field("", max_length=1024, description="The rule that allowed or required it.")
    phase: str | None = Field(None, max_length=16, description="Phase of the ChangeRequest.")
    review_deadline: datetime | None = None
    conditions: ApprovalConditions | None = None


class DeploymentTaskStatus(StatusModel):
    """Where the chain is."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    phase: TaskPhase | None = Field(None, description="Informational summary for printer columns.")
    current_step: str | None = Field(None, max_length=64, description="The step in progress, e.g. Monitor.")
    progress: str | None = Field(None, max_length=16, description="Rings passed / rings planned, e.g. 2/3.")
    current_ring: int | None = Field(None, ge=0, le=4)
    steps: list[Step] = Field(default_factory=list, max_length=24)
    plan: PlanRecord | None = None
    approval: ApprovalRecord | None = None
    risk: RiskAssessment | None = None
    evidence: EvidenceRef | None = None
    change_request: str | None = Field(None, max_length=253)
    rings: list[RingProgress] = Field(default_factory=list, max_length=5)
    validated_generation: int | None = Field(None, description="The generation ValidateIntent last judged.")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    correlation_id: str | None = Field(None, max_length=63)


class DeploymentTask(CustomResource[DeploymentTaskSpec, DeploymentTaskStatus]):
    kind: ClassVar[str] = "DeploymentTask"
