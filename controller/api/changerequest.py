"""The ChangeRequest kind: the CAB record for one DeploymentTask.

Created by the controller with the evidence reference and a digest of the plan; approvers
append decisions. The controller evaluates quorum, separation of duties, expiry and the
plan binding, and publishes the effective (machine-readable) conditions.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from controller.api.deploymenttask import EvidenceRef, ImageTag
from controller.api.meta import CamelModel, Condition, CustomResource, DnsLabel, ObjectName, Ring, StatusModel, UserName


class Decision(StrEnum):
    APPROVE = "Approve"
    REJECT = "Reject"


class ChangePhase(StrEnum):
    PENDING = "Pending"
    APPROVED = "Approved"
    REJECTED = "Rejected"
    EXPIRED = "Expired"
    REVOKED = "Revoked"


class ChangeWindow(CamelModel):
    """A time window in which the change may proceed."""

    days: list[str] = Field(
        default_factory=list, max_length=7, description="Days of week (Mon..Sun); empty means every day."
    )
    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="Start time, HH:MM.")
    end: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="End time, HH:MM.")
    time_zone: str = Field("UTC", max_length=64, description="IANA time zone, e.g. Europe/Berlin.")


class ApprovalConditions(CamelModel):
    """Machine-readable limits an approval binds the rollout to."""

    max_ring: Ring | None = Field(None, description="Stop the rollout after this ring.")
    min_success_rate: float | None = Field(None, ge=0, le=1, description="Gate every ring at this success rate.")
    rollback_below: float | None = Field(None, ge=0, le=1, description="Roll back when success falls below this.")
    min_soak_seconds: int | None = Field(None, ge=0, description="Soak every ring at least this long.")
    windows: list[ChangeWindow] = Field(default_factory=list, max_length=8, description="Allowed windows.")


class DecisionRecord(CamelModel):
    """One approver's decision, appended to spec.decisions."""

    approver: UserName = Field(description="Who decided; must hold cab-approver and not be the submitter.")
    decision: Decision = Field(description="Approve or Reject.")
    conditions: ApprovalConditions | None = Field(None, description="Conditions attached to an approval.")
    comment: str | None = Field(None, max_length=2048, description="Why.")
    decided_at: datetime | None = Field(None, description="When; the controller fills it when missing.")
    plan_digest: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="The plan digest approved; defaults to the current one."
    )


class ChangeRequestSpec(CamelModel):
    """What is asked of the CAB."""

    task: ObjectName = Field(description="The DeploymentTask this change request is for.")
    app: DnsLabel = Field(description="The app being changed.")
    version: ImageTag = Field(description="The version being shipped.")
    max_ring: Ring = Field(description="The highest ring the plan reaches.")
    risk_score: int = Field(ge=0, le=100, description="The deterministic risk score.")
    evidence: EvidenceRef | None = Field(None, description="The immutable evidence pack.")
    plan_digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the plan; approvals bind to it.")
    required_approvals: int = Field(1, ge=1, le=5, description="Quorum by blast-radius class.")
    submitted_by: UserName = Field(description="The requester; may not approve their own change.")
    review_deadline: datetime | None = Field(None, description="After this the request expires.")
    decisions: list[DecisionRecord] = Field(
        default_factory=list, max_length=20, description="Decisions appended by approvers."
    )


class DecisionOutcome(StatusModel):
    """How the controller counted one decision."""

    approver: str = Field(max_length=253)
    decision: Decision
    accepted: bool
    reason: str = Field("", max_length=512)


class ChangeRequestStatus(StatusModel):
    """The CAB outcome."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    phase: ChangePhase | None = None
    approvals: int = Field(0, ge=0)
    outcomes: list[DecisionOutcome] = Field(default_factory=list, max_length=20)
    effective_conditions: ApprovalConditions | None = None
    decided_at: datetime | None = None


class ChangeRequest(CustomResource[ChangeRequestSpec, ChangeRequestStatus]):
    kind: ClassVar[str] = "ChangeRequest"
