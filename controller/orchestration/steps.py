"""Slow steps as data: actor names, idempotency keys, leases, retry backoff and the facts the machine reads.

A slow step (GenerateEvidence, Deploy of a ring, a Monitor poll, Rollback of a ring) is executed by a
dramatiq actor enqueued by name. Its key is `<correlation id>/<task uid>/<step>[/r<ring>]/a<attempt>`:
the correlation ID first (the planes and the audit trail group by it), the task uid so a re-created
task never reads an old task's results, the attempt so a silent worker can be replaced. The actor
claims the key in `step_claims` and finishes it with its step's report (`EvidenceReport`,
`DeployReport`, `PollReport`, `RollbackReport`) or a `StepFailure`; the reconcile reads it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from controller.api.deploymenttask import StepName

GENERATE_EVIDENCE_ACTOR = "orchestration_generate_evidence"
DEPLOY_RING_ACTOR = "orchestration_deploy_ring"
POLL_RING_ACTOR = "orchestration_poll_ring"
ROLLBACK_RING_ACTOR = "orchestration_rollback_ring"

#: Attempts of a step that fails transiently before the task fails.
MAX_ATTEMPTS = 6
#: Capped exponential backoff between attempts (base 1 s, doubling, capped at 60 s).
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0
#: A step whose worker stays silent for this long (or this many poll intervals) is taken over.
MIN_LEASE_SECONDS = 10.0
LEASE_POLL_INTERVALS = 5
#: Each message already waiting in the steps queue when a step is sent lengthens its lease by this much
#: (a worker process with its threads gets through tens of steps a second; this is a pessimistic rate),
#: so a long queue is not mistaken for a silent worker and the step is not sent a second time.
LEASE_SECONDS_PER_QUEUED_STEP = 0.1
MAX_LEASE_SECONDS = 1800.0
#: Consecutive failed health polls after which the task fails (health is unknown).
MAX_POLL_ERRORS = 5


def backoff_seconds(attempt: int) -> float:
    """Delay before attempt `attempt + 1` after attempt `attempt` failed: 1, 2, 4, ... capped at 60 s."""
    delay: float = BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1)
    return min(BACKOFF_CAP_SECONDS, delay)


def lease_seconds(poll_interval_seconds: int, queued_steps: int = 0) -> float:
    """How long a step's worker may stay silent before the step is sent again or taken over."""
    base = max(MIN_LEASE_SECONDS, LEASE_POLL_INTERVALS * float(poll_interval_seconds))
    return min(MAX_LEASE_SECONDS, base + LEASE_SECONDS_PER_QUEUED_STEP * max(0, queued_steps))


def step_base(correlation_id: str, uid: str, step: StepName, ring: int | None = None) -> str:
    """The key of a step without its attempt: also the plane's idempotency key for the step's calls."""
    ring_part = f"/r{ring}" if ring is not None else ""
    return f"{correlation_id}/{uid[:8]}/{step.value}{ring_part}"


def step_key(correlation_id: str, uid: str, step: StepName, ring: int | None, attempt: int, tag: str = "") -> str:
    """The key of one attempt (`tag` distinguishes plans for evidence, polls for Monitor)."""
    suffix = f"/{tag}" if tag else ""
    return f"{step_base(correlation_id, uid, step, ring)}{suffix}/a{attempt}"


class StepFailure(BaseModel):
    """What an actor stores in `step_claims.outcome` when a step failed: whether a retry may help, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    ok: Literal[False] = False
    transient: bool = False
    error: str = ""
    at: datetime | None = Field(default=None, strict=False)


class StepReport(BaseModel):
    """The part every successful step's report shares; each step kind adds its own fields below."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    ok: Literal[True] = True
    at: datetime | None = Field(default=None, strict=False)


class EvidenceReport(StepReport):
    """GenerateEvidence: the stored pack's id and its sha256."""

    id: str
    sha256: str


class DeployReport(StepReport):
    """Deploy of a ring: how many targets it has, how many changed, how many Assignments were written."""

    targets: int
    changed: int
    assignments: int


class PollReport(StepReport):
    """One Monitor poll of a ring for the version being rolled out."""

    targets: int
    updated: int
    healthy: int
    failed: int


class RollbackReport(StepReport):
    """Rollback of a ring: the targets (or whole-ring rows) restored, how many changed, Assignments written."""

    targets: int
    changed: int
    assignments: int


R = TypeVar("R", bound=StepReport)


def read_report(outcome: Mapping[str, Any], kind: type[R]) -> R | StepFailure:
    """A finished step's stored outcome as its kind's report, or as the failure it reports."""
    if outcome.get("ok") is True:
        return kind.model_validate(outcome)
    return StepFailure.model_validate(outcome)


@dataclass(frozen=True)
class Claim:
    """The state of one step key as the reconcile saw it in `step_claims`."""

    claimed_at: datetime
    finished: bool
    outcome: dict[str, Any] | None = None

    def report(self, kind: type[R]) -> R | StepFailure | None:
        """The worker's report once the step finished, read as `kind` (None while it runs)."""
        if not self.finished or self.outcome is None:
            return None
        return read_report(self.outcome, kind)


@dataclass(frozen=True)
class Dispatch:
    """One message to enqueue: the actor, the key, its keyword arguments (ids and small scalars)."""

    actor: str
    key: str
    kwargs: dict[str, Any] = field(default_factory=dict)
