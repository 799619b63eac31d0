"""The pieces a Remediation reconcile returns: one `Step` (status fields, Ready, Events, audit rows,
when to look again) and the shared facts it was computed from. `remediating.py` builds Steps;
`compose` turns one into the Outcome that `controller.operator.handlers` applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from controller.api.meta import ConditionStatus
from controller.api.policy import Policy
from controller.api.remediation import RemediationPhase
from controller.core import conditions
from controller.core.conditions import READY, accepted_conditions
from controller.core.outcome import Admitted, AuditNote, EventNote, Outcome
from controller.planes.catalog import PlaneSource
from controller.remediation.cluster import Cluster
from controller.remediation.ledger import Ledger
from controller.storage.claims import StepClaim

#: Dramatiq actor that performs a fix (declared in controller/worker/actors.py).
ACT_ACTOR = "remediation_act"


def act_key(remediation_uid: str, attempt: int) -> str:
    """The step-claim key of one fix attempt (the worker claims it; the controller reads its outcome)."""
    return f"remediation/{remediation_uid}/act/{attempt}"


@dataclass(frozen=True)
class ActRequest:
    """The ids an act message carries."""

    namespace: str
    name: str
    uid: str
    attempt: int
    correlation_id: str
    assignment: str = ""

    def kwargs(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "attempt": self.attempt,
            "assignment": self.assignment,
        }


class ClaimReader(Protocol):
    async def __call__(self, key: str) -> StepClaim | None: ...


@dataclass
class Engine:
    """What the Remediation controller talks to."""

    cluster: Cluster
    planes: PlaneSource
    ledger: Ledger
    policy: Policy
    claim: ClaimReader
    enqueue: Callable[[ActRequest], None] | None
    expedite: Callable[[str], None] | None = None


def poll_seconds(policy: Policy) -> float:
    """How often an acting or verifying Remediation looks again: a quarter of the settle time, 0.5-5 s."""
    return min(5.0, max(0.5, policy.remediation.settle_seconds / 4))


def stale_seconds(policy: Policy) -> float:
    """An attempt pending longer than this no longer counts against the concurrency limits."""
    limits = policy.remediation
    return float(limits.timeout_seconds + limits.verify_timeout_seconds + limits.settle_seconds + 60)


@dataclass(frozen=True)
class Step:
    """What one reconcile pass decided."""

    status: dict[str, Any] = field(default_factory=dict)
    ready: tuple[ConditionStatus, str, str] | None = None
    events: tuple[EventNote, ...] = ()
    audits: tuple[AuditNote, ...] = ()
    requeue_after_seconds: float | None = None

    @property
    def phase(self) -> RemediationPhase | None:
        value = self.status.get("phase")
        return RemediationPhase(value) if value else None


def compose(body: dict[str, Any], admitted: Admitted, step: Step, now: datetime) -> Outcome:
    """The Outcome of `step`: status delta (observedGeneration, conditions, fields), labels, notes."""
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    extra = []
    if step.ready is not None:
        status, reason, message = step.ready
        extra.append(conditions.make(READY, status, reason, message, generation, now))
    conds = accepted_conditions(body, generation, now, extra)
    if conditions.find(conds, READY) is None:
        conds = conditions.set_condition(
            conds,
            conditions.make(READY, ConditionStatus.UNKNOWN, "Accepted", "Remediation accepted", generation, now),
        )
    desired = {
        "observedGeneration": generation,
        "conditions": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conds],
        **step.status,
    }
    current = body.get("status") or {}
    first = not current.get("conditions")
    events = step.events if not first else (EventNote("Accepted", "Remediation accepted"), *step.events)
    return Outcome(
        status=conditions.delta(current, desired),
        labels=admitted.new_labels,
        events=events,
        audits=step.audits,
        requeue_after_seconds=step.requeue_after_seconds,
    )
