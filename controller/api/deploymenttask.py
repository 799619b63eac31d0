"""The DeploymentTask kind: one intent to ship `app@version` through rings up to `maxRing`.

The controller drives it through the seed's chain (ValidateIntent, GenerateEvidence,
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


class GateResult(StrEnum):
    PENDING = "Pending"
    SOAKING = "Soaking"
    PASSED = "Passed"
    FAILED = "Failed"


class ApprovalSettings(CamelModel):
    """How long the task waits for a CAB decision."""

    max_wait_seconds: int = Field(
        3600, ge=60, le=30 * 24 * 3600, description="Wait at most this long in AwaitApproval, then Expired."
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
    """One step of the chain."""

    name: StepName
    state: StepState = StepState.PENDING
    attempts: int = Field(0, ge=0)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_attempt_at: datetime | None = None
    message: str | None = Field(None, max_length=2048)


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
    healthy_since: datetime | None = None


class DeploymentTaskStatus(StatusModel):
    """Where the chain is."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    phase: TaskPhase | None = Field(None, description="Informational summary for printer columns.")
    current_ring: int | None = Field(None, ge=0, le=4)
    steps: list[Step] = Field(default_factory=list, max_length=16)
    risk: RiskAssessment | None = None
    evidence: EvidenceRef | None = None
    change_request: str | None = Field(None, max_length=253)
    rings: list[RingProgress] = Field(default_factory=list, max_length=5)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    correlation_id: str | None = Field(None, max_length=63)


class DeploymentTask(CustomResource[DeploymentTaskSpec, DeploymentTaskStatus]):
    kind: ClassVar[str] = "DeploymentTask"
