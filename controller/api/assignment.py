"""The Assignment kind: the desired state of one app on one target; drift is measured against it.

Written by the controller after a ring is rolled out (or by a user); the drift loop checks it
at an interval set by its criticality and opens Remediations within policy.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from controller.api.deploymenttask import ImageRepository, ImageTag, PlaneName
from controller.api.meta import (
    CamelModel,
    Condition,
    CorrelationId,
    CustomResource,
    DnsLabel,
    ObjectName,
    Ring,
    StatusModel,
)


class Criticality(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    STANDARD = "standard"
    LOW = "low"


class DriftMode(StrEnum):
    OFF = "Off"
    WARN = "Warn"
    ENFORCE = "Enforce"


class DriftType(StrEnum):
    VERSION_MISMATCH = "VersionMismatch"
    MISSING_INSTALL = "MissingInstall"
    CONFIGURATION_DRIFT = "ConfigurationDrift"
    SERVICE_DOWN = "ServiceDown"
    UNKNOWN = "Unknown"


class SyncState(StrEnum):
    SYNCED = "Synced"
    DRIFTED = "Drifted"
    UNKNOWN = "Unknown"


class Target(CamelModel):
    """Where the app runs: a workload on the kubernetes plane, or a simulated device."""

    plane: PlaneName = Field(PlaneName.KUBERNETES, description="kubernetes or simulated.")
    namespace: DnsLabel | None = Field(None, description="Namespace of the workload (kubernetes plane).")
    name: ObjectName | None = Field(None, description="Name of the Deployment (kubernetes plane).")
    address: str | None = Field(None, max_length=253, description="Device id (simulated plane).")


class ConfigRef(CamelModel):
    """The configuration the target must run with."""

    config_map: ObjectName | None = Field(None, description="ConfigMap referenced by the workload.")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="Expected hash of its data.")


class DriftPolicy(CamelModel):
    """What to do when drift is seen."""

    mode: DriftMode = Field(DriftMode.ENFORCE, description="Off, Warn (record only) or Enforce (remediate).")
    ignore: list[DriftType] = Field(default_factory=list, max_length=5, description="Drift types to ignore.")


class AssignmentSpec(CamelModel):
    """The desired state of one app on one target."""

    app: DnsLabel = Field(description="The app.")
    version: ImageTag = Field(description="The version that must run.")
    artifact: ImageRepository | None = Field(None, description="Image repository.")
    ring: Ring = Field(description="Ring of the target.")
    target: Target = Field(description="Where the app runs.")
    config: ConfigRef | None = Field(None, description="What configuration drift compares against.")
    criticality: Criticality = Field(
        Criticality.STANDARD, description="critical 15m, high 30m, standard 1h, low 4h between drift checks."
    )
    drift: DriftPolicy = Field(default_factory=DriftPolicy, description="Drift handling.")
    correlation_id: CorrelationId | None = Field(None, description="Correlation ID of the rollout that set it.")


class DriftObservation(StatusModel):
    """The last drift seen."""

    type: DriftType = Field(description="VersionMismatch, MissingInstall, ConfigurationDrift, ServiceDown or Unknown.")
    detail: str = Field("", max_length=1024, description="What differs, in words.")
    detected_at: datetime | None = Field(None, description="When this drift was first seen.")
    security_relevant: bool = Field(False, description="The drift may be a security issue; it always escalates.")


class Observed(StatusModel):
    """What the execution plane reported."""

    version: str | None = Field(None, max_length=128, description="Version (image tag) running.")
    image: str | None = Field(None, max_length=512, description="Image reference running.")
    config_sha256: str | None = Field(None, max_length=64, description="Hash of the configuration in use.")
    present: bool = Field(True, description="Whether the workload exists.")
    available: bool | None = Field(None, description="Whether it is available.")
    replicas: int | None = Field(None, ge=0)
    ready_replicas: int | None = Field(None, ge=0)


class AssignmentStatus(StatusModel):
    """The drift loop's last observation."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    sync: SyncState | None = Field(None, description="Synced, Drifted, or Unknown (not checked, or drift mode Off).")
    drift: DriftObservation | None = Field(None, description="The drift seen, if any.")
    observed: Observed | None = Field(None, description="What the execution plane reported.")
    last_checked_at: datetime | None = Field(
        None,
        description="The check that last changed this status (the loop writes only on change; "
        "an unchanged Assignment was still checked at its interval).",
    )
    synced_since: datetime | None = Field(None, description="Since when it has been in sync.")
    remediation: str | None = Field(
        None, max_length=253, description="The Remediation of the current drift (open, or escalated)."
    )


class Assignment(CustomResource[AssignmentSpec, AssignmentStatus]):
    kind: ClassVar[str] = "Assignment"
