"""In-memory stand-ins for the unit tests: an execution plane, the API server, the ledger, claims.

They follow the protocols the code uses (ExecutionPlane, Cluster, Ledger) closely enough that the
sweep and the Remediation engine run unchanged on them, and they count calls so batching shows.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.api.assignment import DriftType
from controller.api.policy import RemediationLimits
from controller.planes.base import ActionResult, Observation, PlaneError, RingHealth, TargetRef
from controller.remediation.backoff import AttemptOutcome, AttemptRecord
from controller.remediation.cluster import ObjectRef
from controller.remediation.deciding import RateCounts
from controller.remediation.ledger import HOUR, NewAttempt, RecordInfo, over_limits
from controller.storage.claims import StepClaim

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REPO = "registry.example.com/team"


@dataclass
class Workload:
    """One target as the fake plane holds it."""

    version: str = "1.4.1"
    repository: str = REPO + "/web"
    config_sha256: str | None = "a" * 64
    present: bool = True
    available: bool = True
    updated: bool = True
    unavailable_since: datetime | None = None


@dataclass
class FakePlane:
    """An ExecutionPlane over a dict of workloads keyed by `namespace/name` (or address)."""

    name: str = "kubernetes"
    workloads: dict[str, Workload] = field(default_factory=dict)
    recorded: dict[str, Workload] = field(default_factory=dict)
    observe_calls: list[list[str]] = field(default_factory=list)
    actions: list[tuple[str, str, str]] = field(default_factory=list)
    keys: dict[str, ActionResult] = field(default_factory=dict)
    fail_observe: PlaneError | None = None
    fail_action: PlaneError | None = None

    def put(self, key: str, workload: Workload | None = None) -> Workload:
        workload = workload or Workload()
        self.workloads[key] = workload
        self.recorded[key] = copy.copy(workload)
        return workload

    async def targets(self, app: str, ring: int) -> list[TargetRef]:
        return []

    async def observe(self, targets: list[TargetRef]) -> list[Observation]:
        self.observe_calls.append([t.key for t in targets])
        if self.fail_observe is not None:
            raise self.fail_observe
        found = []
        for target in targets:
            w = self.workloads.get(target.key)
            if w is None or not w.present:
                found.append(Observation(target=target, present=False, detail="not found"))
                continue
            found.append(
                Observation(
                    target=target,
                    present=True,
                    version=w.version,
                    image=f"{w.repository}:{w.version}",
                    config_sha256=w.config_sha256,
                    available=w.available,
                    replicas=1,
                    ready_replicas=int(w.available),
                    updated=w.updated,
                    unavailable_since=w.unavailable_since,
                )
            )
        return found

    async def health(self, app: str, ring: int, version: str) -> RingHealth:
        return RingHealth(ring, 0, 0, 0, 0)

    async def _act(self, op: str, target: TargetRef, key: str, change: Any) -> ActionResult:
        if key in self.keys:
            return replace(self.keys[key], replayed=True)
        if self.fail_action is not None:
            raise self.fail_action
        self.actions.append((op, target.key, key))
        change(self.workloads.setdefault(target.key, copy.copy(self.recorded.get(target.key, Workload()))))
        result = ActionResult(target, changed=True, detail=f"{op} done")
        self.keys[key] = result
        return result

    async def apply(self, target: TargetRef, version: str, artifact: str | None, key: str) -> ActionResult:
        def change(w: Workload) -> None:
            w.version = version
            if artifact:
                w.repository = artifact

        return await self._act("apply", target, key, change)

    async def rollback(self, target: TargetRef, key: str) -> ActionResult:
        return await self._act("rollback", target, key, lambda w: None)

    async def install(self, target: TargetRef, key: str) -> ActionResult:
        def change(w: Workload) -> None:
            self.workloads[target.key] = copy.copy(self.recorded[target.key])

        return await self._act("install", target, key, change)

    async def restart(self, target: TargetRef, key: str) -> ActionResult:
        def change(w: Workload) -> None:
            w.available, w.unavailable_since = True, None

        return await self._act("restart", target, key, change)

    async def reapply_config(self, target: TargetRef, key: str) -> ActionResult:
        def change(w: Workload) -> None:
            w.config_sha256 = self.recorded[target.key].config_sha256

        return await self._act("reapply_config", target, key, change)


@dataclass
class Planes:
    planes: dict[str, FakePlane]

    def get(self, name: str) -> FakePlane:
        return self.planes[name]


_uids = itertools.count(1)


@dataclass
class FakeCluster:
    """The API server, for Assignments, Remediations, DeploymentTasks and Events."""

    assignments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    remediations: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str, str, str]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def add_assignment(self, name: str, spec: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
        body = {
            "apiVersion": "ringpilot.dev/v1alpha1",
            "kind": "Assignment",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"uid-{next(_uids)}",
                "generation": 1,
                "labels": {"ringpilot.dev/correlation-id": f"cid-{name}"},
            },
            "spec": spec,
            "status": {},
        }
        self.assignments[(namespace, name)] = body
        return body

    async def list_assignments(self, namespaces: list[str] | None) -> list[dict[str, Any]]:
        self.calls.append("list assignments")
        return [copy.deepcopy(b) for (ns, _), b in self.assignments.items() if not namespaces or ns in namespaces]

    async def get_assignment(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append("get assignment")
        body = self.assignments.get((namespace, name))
        return copy.deepcopy(body) if body else None

    async def patch_assignment_status(self, namespace: str, name: str, status: dict[str, Any]) -> Any:
        self.calls.append("patch assignment status")
        body = self.assignments.get((namespace, name))
        if body is None:
            return None
        merged = dict(body.get("status") or {})
        for key, value in status.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        body["status"] = merged
        return copy.deepcopy(body)

    async def create_remediation(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("create remediation")
        created = copy.deepcopy(body)
        created["metadata"].update(namespace=namespace, uid=f"uid-{next(_uids)}", generation=1)
        created["status"] = {}
        self.remediations[(namespace, created["metadata"]["name"])] = created
        return copy.deepcopy(created)

    async def get_remediation(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append("get remediation")
        body = self.remediations.get((namespace, name))
        return copy.deepcopy(body) if body else None

    async def list_deployment_tasks(self) -> list[dict[str, Any]]:
        self.calls.append("list tasks")
        return copy.deepcopy(self.tasks)

    async def post_event(self, ref: ObjectRef, reason: str, message: str, type_: str, now: datetime) -> None:
        self.events.append((ref.name, reason, message, type_))


@dataclass
class MemoryLedger:
    """The ledger in memory (same rules as PgLedger, without the lock)."""

    records_: dict[tuple[str, str], RecordInfo] = field(default_factory=dict)
    attempts: list[tuple[NewAttempt, AttemptRecord]] = field(default_factory=list)
    resets: dict[str, datetime] = field(default_factory=dict)

    async def note_opened(self, record: RecordInfo) -> None:
        self.records_.setdefault((record.namespace, record.name), record)

    async def record_for(self, namespace: str, name: str) -> RecordInfo | None:
        return self.records_.get((namespace, name))

    async def records(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], RecordInfo]:
        return {k: self.records_[k] for k in keys if k in self.records_}

    async def save_record(self, record: RecordInfo) -> None:
        self.records_[(record.namespace, record.name)] = record

    async def open_for_assignment(self, assignment_uid: str, exclude: tuple[str, str]) -> RecordInfo | None:
        found = [
            r
            for k, r in self.records_.items()
            if r.assignment_uid == assignment_uid and k != exclude and r.closed_at is None and not r.dry_run
        ]
        return min(found, key=lambda r: r.opened_at, default=None)

    async def history(self, assignment_uid: str) -> tuple[list[AttemptRecord], datetime | None]:
        rows = [a for n, a in self.attempts if n.assignment_uid == assignment_uid]
        return sorted(rows, key=lambda a: a.started_at), self.resets.get(assignment_uid)

    async def pending_attempt(self, remediation_uid: str) -> AttemptRecord | None:
        rows = [
            a for n, a in self.attempts if n.remediation_uid == remediation_uid and a.outcome is AttemptOutcome.PENDING
        ]
        return max(rows, key=lambda a: a.number, default=None)

    async def rate_counts(self, app: str, ring: int, now: datetime, stale_seconds: float) -> RateCounts:
        return self._counts(app, ring, now, stale_seconds)

    def _counts(self, app: str, ring: int, now: datetime, stale_seconds: float) -> RateCounts:
        stale = now - timedelta(seconds=stale_seconds)
        pending = [(n, a) for n, a in self.attempts if a.outcome is AttemptOutcome.PENDING and a.started_at > stale]
        return RateCounts(
            in_ring=sum(1 for n, _ in pending if n.ring == ring),
            for_app=sum(1 for n, _ in pending if n.app == app),
            last_hour=sum(1 for _, a in self.attempts if a.started_at > now - HOUR),
        )

    async def start_attempt(
        self, attempt: NewAttempt, limits: RemediationLimits, now: datetime, stale_seconds: float
    ) -> AttemptRecord | None:
        if over_limits(self._counts(attempt.app, attempt.ring, now, stale_seconds), limits):
            return None
        for n, a in self.attempts:
            if (n.remediation_uid, n.number) == (attempt.remediation_uid, attempt.number):
                return a
        record = AttemptRecord(
            attempt.number,
            attempt.drift_type,
            now,
            remediation=attempt.remediation,
            action=attempt.action,
            remediation_uid=attempt.remediation_uid,
        )
        self.attempts.append((attempt, record))
        return record

    async def finish_attempt(self, remediation_uid: str, number: int, outcome: AttemptOutcome, now: datetime) -> None:
        for i, (n, a) in enumerate(self.attempts):
            if (n.remediation_uid, n.number) == (remediation_uid, number) and a.outcome is AttemptOutcome.PENDING:
                self.attempts[i] = (n, replace(a, outcome=outcome, finished_at=now))

    async def set_reset_points(self, points: dict[str, datetime]) -> None:
        for uid, at in points.items():
            self.resets[uid] = max(at, self.resets.get(uid, at))


@dataclass
class Claims:
    """step_claims in memory: what the worker recorded per key."""

    rows: dict[str, StepClaim] = field(default_factory=dict)

    async def __call__(self, key: str) -> StepClaim | None:
        return self.rows.get(key)

    def finish(self, key: str, outcome: dict[str, Any], at: datetime) -> None:
        self.rows[key] = StepClaim(
            key=key, correlation_id="c", owner="w", claimed_at=at, outcome=outcome, finished_at=at
        )

    def claim(self, key: str, at: datetime) -> None:
        self.rows[key] = StepClaim(key=key, correlation_id="c", owner="w", claimed_at=at)


def spec(app: str = "web", ring: int = 0, namespace: str = "ring-0-lab", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "app": app,
        "version": "1.4.1",
        "ring": ring,
        "criticality": "critical",
        "target": {"plane": "kubernetes", "namespace": namespace, "name": app},
        "config": {"configMap": f"{app}-config", "sha256": "a" * 64},
    }
    body.update(extra)
    return body


def drift_type(value: str) -> DriftType:
    return DriftType(value)
