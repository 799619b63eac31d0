"""The registry of Ringpilot's five kinds: names, short names and printer columns.

Everything that needs to know "which kinds exist" (the CRD generator, the operator, the
client, the dev stack) reads this table, so adding a kind is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.api.assignment import Assignment, AssignmentSpec, AssignmentStatus
from controller.api.changerequest import ChangeRequest, ChangeRequestSpec, ChangeRequestStatus
from controller.api.conversation import Conversation, ConversationSpec, ConversationStatus
from controller.api.deploymenttask import DeploymentTask, DeploymentTaskSpec, DeploymentTaskStatus
from controller.api.meta import CamelModel, CustomResource, StatusModel
from controller.api.remediation import Remediation, RemediationSpec, RemediationStatus

READY = '.status.conditions[?(@.type=="Ready")].status'


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    description: str
    spec_model: type[CamelModel]
    status_model: type[StatusModel]
    resource_model: type[CustomResource]  # type: ignore[type-arg]
    columns: tuple[PrinterColumn, ...]


AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date", "Time since creation")
#: Why the object is where it is: the Ready condition's reason (InvalidSpec, AwaitingApproval, ...).
REASON = PrinterColumn("Reason", '.status.conditions[?(@.type=="Ready")].reason', description="Ready's reason")

CONVERSATION = KindInfo(
    kind="Conversation",
    plural="conversations",
    singular="conversation",
    short_names=("conv",),
    description="A chat session with Ringpilot: user turns go in spec.messages, replies come back in status.",
    spec_model=ConversationSpec,
    status_model=ConversationStatus,
    resource_model=Conversation,
    columns=(
        PrinterColumn("User", ".spec.user", description="Who is speaking"),
        PrinterColumn("Answered", ".status.answered", "integer", "Messages answered"),
        PrinterColumn("Ready", READY, description="Ready condition"),
        PrinterColumn("Reply", ".status.reply", description="Last reply", priority=1),
        AGE,
    ),
)
DEPLOYMENT_TASK = KindInfo(
    kind="DeploymentTask",
    plural="deploymenttasks",
    singular="deploymenttask",
    short_names=("dtask",),
    description="One intent: ship app@version through rings 0..maxRing under CAB governance, or roll back.",
    spec_model=DeploymentTaskSpec,
    status_model=DeploymentTaskStatus,
    resource_model=DeploymentTask,
    columns=(
        PrinterColumn("App", ".spec.app"),
        PrinterColumn("Version", ".spec.version"),
        PrinterColumn("Action", ".spec.action", priority=1),
        PrinterColumn("Max Ring", ".spec.maxRing", "integer"),
        PrinterColumn("Ring", ".status.currentRing", "integer", "Ring in progress"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Step", ".status.currentStep", description="Step in progress"),
        PrinterColumn("Progress", ".status.progress", description="Rings passed / rings planned"),
        PrinterColumn("Risk", ".status.risk.score", "integer", "Risk score 0-100"),
        REASON,
        PrinterColumn("Change", ".status.changeRequest", priority=1),
        AGE,
    ),
)
CHANGE_REQUEST = KindInfo(
    kind="ChangeRequest",
    plural="changerequests",
    singular="changerequest",
    short_names=("chg",),
    description="The CAB record for one DeploymentTask: approvers append decisions to spec.decisions.",
    spec_model=ChangeRequestSpec,
    status_model=ChangeRequestStatus,
    resource_model=ChangeRequest,
    columns=(
        PrinterColumn("Task", ".spec.task"),
        PrinterColumn("App", ".spec.app"),
        PrinterColumn("Version", ".spec.version"),
        PrinterColumn("Risk", ".spec.riskScore", "integer"),
        PrinterColumn("Approvals", ".status.approvals", "integer"),
        PrinterColumn("Required", ".spec.requiredApprovals", "integer"),
        PrinterColumn("Phase", ".status.phase"),
        REASON,
        PrinterColumn("Deadline", ".spec.reviewDeadline", "date", priority=1),
        AGE,
    ),
)
ASSIGNMENT = KindInfo(
    kind="Assignment",
    plural="assignments",
    singular="assignment",
    short_names=("asg",),
    description="The desired state of one app on one target; drift is measured against it.",
    spec_model=AssignmentSpec,
    status_model=AssignmentStatus,
    resource_model=Assignment,
    columns=(
        PrinterColumn("App", ".spec.app"),
        PrinterColumn("Version", ".spec.version"),
        PrinterColumn("Ring", ".spec.ring", "integer"),
        PrinterColumn("Namespace", ".spec.target.namespace", description="Namespace of the target workload"),
        PrinterColumn("Target", ".spec.target.name"),
        PrinterColumn("Mode", ".spec.drift.mode", priority=1),
        PrinterColumn("Sync", ".status.sync"),
        PrinterColumn("Drift", ".status.drift.type"),
        REASON,
        AGE,
    ),
)
REMEDIATION = KindInfo(
    kind="Remediation",
    plural="remediations",
    singular="remediation",
    short_names=("rem",),
    description="One fix of one drift, within policy; escalated to a human when policy does not allow it.",
    spec_model=RemediationSpec,
    status_model=RemediationStatus,
    resource_model=Remediation,
    columns=(
        PrinterColumn("Assignment", ".spec.assignment"),
        PrinterColumn("Drift", ".status.driftType"),
        PrinterColumn("Action", ".status.action"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Attempts", ".status.attempts", "integer"),
        REASON,
        PrinterColumn("Requested By", ".spec.requestedBy", priority=1),
        AGE,
    ),
)

KINDS: tuple[KindInfo, ...] = (CONVERSATION, DEPLOYMENT_TASK, CHANGE_REQUEST, ASSIGNMENT, REMEDIATION)


def by_kind(kind: str) -> KindInfo:
    """The entry for a kind name such as 'DeploymentTask'."""
    for info in KINDS:
        if info.kind == kind:
            return info
    raise KeyError(kind)
