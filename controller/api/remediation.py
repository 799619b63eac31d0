"""The Remediation kind: one fix of one drift, within policy, else escalated.

Opened by the drift loop (requestedBy system:ringpilot), by a user with kubectl, or by the
chat tool `execute_remediation`; the controller classifies, decides by policy, acts, verifies.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from controller.api.assignment import DriftType
from controller.api.meta import (
    CamelModel,
    Condition,
    CorrelationId,
    CustomResource,
    Message,
    ObjectName,
    StatusModel,
    UserName,
)

SYSTEM_USER = "system:ringpilot"


class FixAction(StrEnum):
    UPDATE = "Update"
    INSTALL = "Install"
    REAPPLY_CONFIG = "ReapplyConfig"
    RESTART = "Restart"


class RemediationPhase(StrEnum):
    PENDING = "Pending"
    REMEDIATING = "Remediating"
    VERIFYING = "Verifying"
    SUCCEEDED = "Succeeded"
    ESCALATED = "Escalated"
    STALLED = "Stalled"
    DENIED = "Denied"
    FAILED = "Failed"


class RemediationSpec(CamelModel):
    """Fix the drift of one Assignment."""

    assignment: ObjectName = Field(description="The Assignment (same namespace) whose drift to fix.")
    drift_type: DriftType | None = Field(None, description="Classified by the controller when unset.")
    action: FixAction | None = Field(None, description="Derived from the drift type when unset.")
    requested_by: UserName = Field(SYSTEM_USER, description="Who asked; system:ringpilot for automatic ones.")
    reason: Message | None = Field(None, description="Why.")
    correlation_id: CorrelationId | None = Field(None, description="Correlation ID; generated when absent.")
    dry_run: bool = Field(False, description="Report what would be done and do nothing.")


class PolicyDecision(StatusModel):
    """Whether policy allowed autonomous action, and the rule that decided."""

    allowed: bool
    reason: str = Field("", max_length=1024)
    rule: str | None = Field(None, max_length=128)


class Verification(StatusModel):
    """The outcome observed after the fix."""

    verified: bool
    at: datetime | None = None
    detail: str = Field("", max_length=1024)


class RemediationStatus(StatusModel):
    """Progress of the fix."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    phase: RemediationPhase | None = None
    drift_type: DriftType | None = None
    action: FixAction | None = None
    policy: PolicyDecision | None = None
    attempts: int = Field(0, ge=0)
    next_attempt_at: datetime | None = None
    requires_human_review: bool = False
    verification: Verification | None = None
    planned: str | None = Field(None, max_length=1024, description="What a dry run would do.")


class Remediation(CustomResource[RemediationSpec, RemediationStatus]):
    kind: ClassVar[str] = "Remediation"
