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
from controller.api.identity import SYSTEM_USER
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
    PLANNED = "Planned"


#: Phases after which a Remediation does nothing more.
FINAL_PHASES = frozenset(
    {
        RemediationPhase.SUCCEEDED,
        RemediationPhase.ESCALATED,
        RemediationPhase.STALLED,
        RemediationPhase.DENIED,
        RemediationPhase.FAILED,
        RemediationPhase.PLANNED,
    }
)


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

    allowed: bool = Field(description="True when policy let Ringpilot act on its own.")
    reason: str = Field("", max_length=1024, description="Why, in words.")
    rule: str | None = Field(None, max_length=128, description="The rule that decided, e.g. ProductionRing.")
    window: str | None = Field(None, max_length=253, description="The change window that decided, if any.")


class Verification(StatusModel):
    """The outcome observed after the fix."""

    verified: bool = Field(description="True when the drift was gone and the target healthy for the settle time.")
    at: datetime | None = Field(None, description="When the verification concluded.")
    detail: str = Field("", max_length=1024, description="What was observed.")


class Attempt(StatusModel):
    """The fix in progress (or the last one)."""

    number: int = Field(ge=1, description="1 for the first attempt at this drift.")
    action: FixAction = Field(description="What was done.")
    started_at: datetime | None = Field(None, description="When the action was handed to a worker.")
    acted_at: datetime | None = Field(None, description="When the execution plane finished the action.")
    result: str | None = Field(None, max_length=1024, description="What the execution plane reported.")
    healthy_since: datetime | None = Field(None, description="Since when the target is in sync and healthy.")
    resent_at: datetime | None = Field(
        None, description="When the action was last handed over again because no worker had taken it up."
    )


class RemediationStatus(StatusModel):
    """Progress of the fix."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    phase: RemediationPhase | None = Field(None, description="Informational summary; logic reads conditions.")
    drift_type: DriftType | None = Field(None, description="The drift being fixed (given or classified).")
    drift_detail: str | None = Field(None, max_length=1024, description="What differed when classified.")
    action: FixAction | None = Field(None, description="The fix for the drift type.")
    requester_role: str | None = Field(None, max_length=64, description="Role of spec.requestedBy under policy.")
    policy: PolicyDecision | None = Field(None, description="The last policy decision.")
    attempts: int = Field(0, ge=0, description="Attempts at this drift so far (across Remediations).")
    next_attempt_at: datetime | None = Field(None, description="Earliest time of the next attempt.")
    requires_human_review: bool = Field(False, description="A person must look at this drift.")
    current_attempt: Attempt | None = Field(None, description="The fix in progress, or the last one.")
    verification: Verification | None = Field(None, description="The verified outcome of the last fix.")
    planned: str | None = Field(None, max_length=1024, description="What a dry run would do.")
    locked_spec: RemediationSpec | None = Field(
        None, description="The spec as it was when the first attempt started; later edits are ignored (SpecLocked)."
    )


class Remediation(CustomResource[RemediationSpec, RemediationStatus]):
    kind: ClassVar[str] = "Remediation"
