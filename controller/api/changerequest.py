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

from controller.api.deploymenttask import ApprovalConditions as ApprovalConditions  # re-exported: this kind's API
from controller.api.deploymenttask import ChangeWindow as ChangeWindow  # re-exported: this kind's API
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
    WITHDRAWN = "Withdrawn"


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
    """How the controller judged one decision, once, as first seen (append-only; docs/domain.md §4)."""

    approver: str = Field(max_length=253)
    decision: Decision
    accepted: bool
    reason: str = Field("", max_length=512)
    plan_digest: str | None = Field(None, max_length=64, description="The plan digest it was counted against.")
    seen_at: datetime | None = Field(None, description="When the controller first counted it.")
    conditions: ApprovalConditions | None = Field(None, description="The conditions as first seen.")
    rewritten: str | None = Field(
        None, max_length=256, description="Set when the decision was later edited or removed; the verdict stands."
    )


class ChangeRequestStatus(StatusModel):
    """The CAB outcome."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    phase: ChangePhase | None = None
    approvals: int = Field(0, ge=0)
    outcomes: list[DecisionOutcome] = Field(default_factory=list, max_length=40)
    effective_conditions: ApprovalConditions | None = None
    decided_at: datetime | None = None
    plan_digest: str | None = Field(None, max_length=64, description="The plan digest this status was computed for.")


class ChangeRequest(CustomResource[ChangeRequestSpec, ChangeRequestStatus]):
    kind: ClassVar[str] = "ChangeRequest"
