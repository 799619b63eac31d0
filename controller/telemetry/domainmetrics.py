"""Domain metrics derived in one place from what a reconcile decided (its status and audit rows).

`observe_outcome` is called by the operator for every Outcome it applies: phase changes give task,
approval and remediation counts and durations; audit rows give admissions, ring gate verdicts and
rollbacks; a census per kind (uid → labels) keeps the by-phase and by-sync gauges, which `forget`
updates when an object is deleted. The controller is one process, so the census is in memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from prometheus_client import Gauge

from controller.telemetry import metrics

FINAL_TASK_PHASES = frozenset({"Succeeded", "Stopped", "Failed", "Expired", "Rejected", "RolledBack", "Cancelled"})
FINAL_REMEDIATION_PHASES = frozenset({"Succeeded", "Escalated", "Stalled", "Denied", "Failed", "Planned"})
DECIDED_CHANGE_PHASES = frozenset({"Approved", "Rejected", "Expired"})
GATE_FAILURES = frozenset({"GateFailed", "BelowRollbackThreshold", "RolloutTimedOut"})
ADMISSION_ACTIONS = {"Accepted": "true", "SpecRejected": "false"}


class AuditLike(Protocol):
    """What is read of an audit note (controller.core.outcome.AuditNote)."""

    @property
    def action(self) -> str: ...

    @property
    def detail(self) -> dict[str, Any] | None: ...


@dataclass
class Census:
    """Objects of one kind by label values; keeps `gauge` equal to the counts."""

    gauge: Gauge
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)
    counts: Counter[tuple[str, ...]] = field(default_factory=Counter)

    def put(self, uid: str, labels: tuple[str, ...] | None) -> None:
        if labels is not None and self.members.get(uid) == labels:
            return  # most reconciles change nothing the census counts
        old = self.members.pop(uid, None)
        if old is not None:
            self.counts[old] -= 1
            self.gauge.labels(*old).set(self.counts[old])
        if labels is not None:
            self.members[uid] = labels
            self.counts[labels] += 1
            self.gauge.labels(*labels).set(self.counts[labels])


@dataclass
class Monitoring:
    """When each task entered Monitoring (as this process saw it) and its soak, for the overdue gauge."""

    since: dict[str, tuple[datetime, float]] = field(default_factory=dict)

    def overdue_seconds(self, now: datetime) -> float:
        late = [(now - at).total_seconds() - soak for at, soak in self.since.values()]
        return max([0.0, *late])


TASKS = Census(metrics.DEPLOYMENTTASKS)
CHANGES = Census(metrics.CHANGEREQUESTS_PENDING)
ASSIGNMENTS = Census(metrics.ASSIGNMENTS)
MONITORING = Monitoring()


def _created(body: Mapping[str, Any]) -> datetime | None:
    stamp = (body.get("metadata") or {}).get("creationTimestamp")
    if isinstance(stamp, datetime):
        return stamp
    if isinstance(stamp, str) and stamp:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return None


def _age_seconds(body: Mapping[str, Any], now: datetime) -> float | None:
    created = _created(body)
    return max(0.0, (now - created).total_seconds()) if created is not None else None


def observe_outcome(
    kind: str,
    body: Mapping[str, Any],
    status: Mapping[str, Any],
    audits: Iterable[AuditLike],
    now: datetime,
) -> None:
    """Count what the outcome (`status` patch, `audits`) of a reconcile of `body` changed."""
    uid = str((body.get("metadata") or {}).get("uid") or "")
    spec: Mapping[str, Any] = body.get("spec") or {}
    before: Mapping[str, Any] = body.get("status") or {}
    after = {**before, **status}
    old_phase, new_phase = before.get("phase"), after.get("phase")
    changed = new_phase is not None and new_phase != old_phase
    age = _age_seconds(body, now) if changed else None  # only a phase change observes a duration
    notes = list(audits)
    for note in notes:
        allowed = ADMISSION_ACTIONS.get(note.action)
        if allowed is not None:
            metrics.ADMISSIONS.labels(kind.lower(), allowed).inc()
    if kind == "DeploymentTask":
        _task(uid, spec, new_phase, changed, age, notes, now)
    elif kind == "ChangeRequest":
        phase = new_phase or "Pending"
        CHANGES.put(uid, (f"ring{spec.get('maxRing', 'unknown')}",) if phase == "Pending" else None)
        if changed and new_phase in DECIDED_CHANGE_PHASES and age is not None:
            metrics.APPROVAL_WAIT_SECONDS.labels(str(new_phase).lower()).observe(age)
    elif kind == "Assignment":
        ASSIGNMENTS.put(uid, (str(after.get("sync") or "Unknown"), str(spec.get("criticality") or "standard")))
    elif kind == "Remediation" and changed and new_phase in FINAL_REMEDIATION_PHASES:
        drift_type = str(after.get("driftType") or spec.get("driftType") or "unknown")
        metrics.REMEDIATIONS.labels(drift_type, str(new_phase).lower()).inc()
        if new_phase == "Succeeded" and age is not None:
            metrics.REMEDIATION_SECONDS.observe(age)


def _task(
    uid: str,
    spec: Mapping[str, Any],
    phase: Any,
    changed: bool,
    age: float | None,
    notes: list[AuditLike],
    now: datetime,
) -> None:
    if phase is not None:
        TASKS.put(uid, (str(phase),))
    if phase == "Monitoring":
        soak = float(((spec.get("monitor") or {}).get("soakSeconds")) or 0)
        MONITORING.since.setdefault(uid, (now, soak))
    else:
        MONITORING.since.pop(uid, None)
    if changed and phase in FINAL_TASK_PHASES and age is not None:
        metrics.DEPLOYMENTTASK_SECONDS.labels(str(phase).lower()).observe(age)
    for note in notes:
        detail = note.detail or {}
        ring = str(detail.get("ring", "unknown"))
        if note.action == "GatePassed":
            metrics.RING_GATES.labels(ring, "pass").inc()
        elif note.action in GATE_FAILURES and "ring" in detail:
            metrics.RING_GATES.labels(ring, "fail").inc()
        elif note.action == "HealthUnavailable":
            metrics.RING_GATES.labels(ring, "inconclusive").inc()
        elif note.action == "RingRolledBack":
            reason = "manual" if spec.get("action") == "Rollback" else "gate"
            metrics.ROLLBACKS.labels(ring, reason).inc()


def forget(kind: str, uid: str) -> None:
    """An object was deleted: take it out of its kind's census."""
    census = {"DeploymentTask": TASKS, "ChangeRequest": CHANGES, "Assignment": ASSIGNMENTS}.get(kind)
    if census is not None:
        census.put(uid, None)
    MONITORING.since.pop(uid, None)


def refresh(now: datetime) -> None:
    """Gauges computed at scrape time."""
    metrics.MONITORING_OVERDUE_SECONDS.set(MONITORING.overdue_seconds(now))
