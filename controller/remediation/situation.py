"""What `progression.next_step` decides from: the Remediation as read, and the facts gathered for it.

Pure values. `effects.gather` reads only what the Remediation's phase calls for: the Assignment and
the ledger record always; then, for a requester policy lets through, the step claim of the attempt
being acted on, or the plane's observation, the attempt history, rate counts and rollouts in flight.
Tests build them by hand or let the in-memory world gather them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from controller.api.assignment import Assignment
from controller.api.policy import Role
from controller.api.remediation import RemediationSpec, RemediationStatus
from controller.remediation.backoff import AttemptRecord
from controller.remediation.classifying import Assessment
from controller.remediation.deciding import Decision, RateCounts
from controller.remediation.ledger import RecordInfo
from controller.storage.claims import StepClaim


@dataclass(frozen=True)
class RemediationView:
    """The Remediation as the reconcile read it."""

    namespace: str
    name: str
    uid: str
    correlation_id: str
    spec: RemediationSpec
    status: RemediationStatus
    #: metadata.uid as stored (None before the API server assigned one); `uid` falls back to the name.
    stored_uid: str | None = None


@dataclass(frozen=True)
class OtherOpen:
    """Another Remediation of the same Assignment that the ledger holds open."""

    record: RecordInfo
    exists: bool


@dataclass(frozen=True)
class RemediationFacts:
    """Everything one pass decides from; fields a phase does not need stay at their defaults."""

    now: datetime
    #: The Assignment, or None with `refusal` saying why (unknown or invalid).
    assignment: Assignment | None = None
    record: RecordInfo | None = None
    #: A Decision to deny the request before anything is observed (who asks, which Assignment).
    refusal: Decision | None = None
    role: Role | None = None
    other_open: OtherOpen | None = None
    adopted: AttemptRecord | None = None
    assessment: Assessment | None = None
    history: Sequence[AttemptRecord] = field(default_factory=tuple)
    reset_at: datetime | None = None
    rates: RateCounts = field(default_factory=RateCounts)
    change_in_progress: str | None = None
    claim: StepClaim | None = None
