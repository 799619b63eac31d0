"""An in-memory world for the DeploymentTask state machine: fake cluster facts, an instant fake worker,
the CAB reconcile, and a clock. Drives the real reconcile functions tick by tick without I/O."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.api.changerequest import ChangeRequest, ChangeRequestSpec
from controller.api.deploymenttask import (
    Action,
    ApprovalRecord,
    DeploymentTaskStatus,
    EvidenceRef,
    PlaneName,
    PlanRecord,
    RiskAssessment,
    TaskPhase,
)
from controller.api.kinds import CHANGE_REQUEST, DEPLOYMENT_TASK
from controller.api.labels import CORRELATION_LABEL
from controller.api.policy import Policy, load_policy
from controller.core.outcome import AuditNote, EventNote, Outcome
from controller.orchestration.steps import (
    DEPLOY_RING_ACTOR,
    GENERATE_EVIDENCE_ACTOR,
    POLL_RING_ACTOR,
    ROLLBACK_RING_ACTOR,
    Claim,
    DeployReport,
    Dispatch,
    EvidenceReport,
    PollReport,
    RollbackReport,
    StepFailure,
    StepReport,
)
from controller.orchestration.transitions import ChangeRequestWrite
from controller.reconcile.changerequests import evaluate_body
from controller.reconcile.deploymenttasks import reconcile_with
from controller.reconcile.deps import Deps
from controller.settings import ControllerSettings

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
#: Every risk input declared at its lowest row (an undeclared one scores as Unknown, the riskiest).
LOW_RISK: dict[str, str] = {
    "privilegeImpact": "UserContext",
    "supplyChainTrust": "SignedKnownProvenance",
    "exploitability": "None",
    "dataAccess": "OwnDirectory",
    "sbomVulnerability": "NoHighOrCritical",
    "operationalComplexity": "OnlineQuick",
    "history": "Clean",
}
Health = Callable[[int, int], tuple[int, int, int, int]]


def task_opening(spec: ChangeRequestSpec, uid: str = "u-1", phase: str | None = None) -> dict[str, Any]:
    """A DeploymentTask body whose status opened a ChangeRequest with exactly `spec`'s controller-owned fields."""
    status = DeploymentTaskStatus(
        phase=TaskPhase(phase) if phase else TaskPhase.AWAITING_APPROVAL,
        plan=PlanRecord(
            digest=spec.plan_digest,
            generation=1,
            app=spec.app,
            version=spec.version,
            action=Action.DEPLOY,
            plane=PlaneName.KUBERNETES,
            max_ring=spec.max_ring,
            submitter=spec.submitted_by,
        ),
        risk=RiskAssessment(
            score=spec.risk_score,
            model_version="v1.0",
            label="CAB_REQUIRED",
            cab_required=True,
            required_approvals=spec.required_approvals,
        ),
        evidence=spec.evidence,
        approval=ApprovalRecord(mode="ChangeRequest", phase="Pending", review_deadline=spec.review_deadline),
        change_request=f"{spec.task}-cab",
    )
    return {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "DeploymentTask",
        "metadata": {"name": spec.task, "namespace": "default", "uid": uid, "generation": 1},
        "spec": {"app": spec.app, "version": spec.version, "maxRing": spec.max_ring},
        "status": status.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def _policy_with(users: dict[str, str]) -> Policy:
    raw = load_policy().model_dump(mode="json", by_alias=True)
    raw["roles"]["users"].update(users)
    return Policy.model_validate(raw)


POLICY = _policy_with({"cab-2": "cab-approver", "cab-3": "cab-approver"})


@dataclass
class FakeWorld:
    """`World` in memory; `queue` holds what the machine enqueued."""

    targets: dict[int, int] = field(default_factory=lambda: {0: 2, 1: 2, 2: 2, 3: 2, 4: 2})
    tasks: list[dict[str, Any]] = field(default_factory=list)
    candidates: int = 0
    claim_rows: dict[str, Claim] = field(default_factory=dict)
    change_requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    evidence_problem: str | None = None
    #: Reads of the stored evidence pack (`verify_evidence` calls).
    evidence_reads: int = 0
    #: Messages other tasks left waiting in the steps queue (the machine's `queue` adds its own).
    backlog: int = 0
    queue: list[Dispatch] = field(default_factory=list)
    sent: list[Dispatch] = field(default_factory=list)
    task_bodies: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def live_tasks_of(self, app: str) -> list[dict[str, Any]]:
        return [t for t in self.tasks if (t.get("spec") or {}).get("app") == app]

    async def target_count(self, plane: str, app: str, ring: int) -> int:
        return self.targets.get(ring, 0)

    async def rollback_candidates(self, app: str, plane: str, version: str, rings: list[int]) -> int:
        return self.candidates

    async def claims(self, keys: list[str]) -> dict[str, Claim]:
        return {k: self.claim_rows[k] for k in keys if k in self.claim_rows}

    async def change_request(self, namespace: str, name: str) -> ChangeRequest | None:
        body = self.change_requests.get(name)
        return ChangeRequest.from_body(body) if body is not None else None

    async def write_change_request(self, write: ChangeRequestWrite, owner_uid: str) -> None:
        spec = write.spec.to_wire()
        body = self.change_requests.get(write.name)
        if body is None:
            self.change_requests[write.name] = {
                "apiVersion": "ringpilot.dev/v1alpha1",
                "kind": "ChangeRequest",
                "metadata": {
                    "name": write.name,
                    "namespace": write.namespace,
                    "generation": 1,
                    "uid": f"uid-{write.name}",
                    "labels": {CORRELATION_LABEL: write.correlation_id},
                    "ownerReferences": [{"kind": "DeploymentTask", "name": write.spec.task, "uid": owner_uid}],
                },
                "spec": spec,
            }
        else:
            body["spec"].update({k: v for k, v in spec.items() if k != "decisions"})
            body["metadata"]["generation"] += 1

    async def queued_steps(self) -> int:
        return self.backlog + len(self.queue)

    async def verify_evidence(self, ref: EvidenceRef) -> str | None:
        self.evidence_reads += 1
        return self.evidence_problem

    async def task_body(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.task_bodies.get(name)

    async def restore_change_request(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        self.change_requests[name]["spec"].update(spec)

    def dispatch(self, item: Dispatch, correlation_id: str) -> None:
        self.queue.append(item)
        self.sent.append(item)


#: Simulated time from a step's dispatch to the round its announced report wakes.
ANNOUNCED_REPORT_SECONDS = 0.1


@dataclass
class FakeWorker:
    """Finishes every enqueued step at once, unless told to fail or stay silent."""

    health: Health | None = None
    failures: dict[tuple[str, int], tuple[bool, str]] = field(default_factory=dict)  # (actor, attempt)
    silent: set[tuple[str, int]] = field(default_factory=set)  # claimed, never finished
    lost: set[tuple[str, int]] = field(default_factory=set)  # never picked up
    polls: dict[int, int] = field(default_factory=dict)

    def run(self, world: FakeWorld, now: datetime) -> int:
        """Run every queued message; the number of reports stored (each announced to the controller)."""
        announced = 0
        queue, world.queue = world.queue, []
        for item in queue:
            if item.key in world.claim_rows:
                continue  # a redelivered message: the claim is taken, nothing happens
            attempt = int(item.key.rsplit("/a", 1)[1]) if "/a" in item.key else 1
            marker = (item.actor, attempt)
            if marker in self.lost:
                self.lost.discard(marker)
                continue
            if marker in self.silent:
                world.claim_rows[item.key] = Claim(now, False, None)
                continue
            report: StepReport | StepFailure
            if marker in self.failures:
                transient, error = self.failures[marker]
                report = StepFailure(transient=transient, error=error)
            else:
                report = self.result(world, item)
            outcome = report.model_copy(update={"at": now}).model_dump(mode="json")
            world.claim_rows[item.key] = Claim(now, True, outcome)
            announced += 1
        return announced

    def result(self, world: FakeWorld, item: Dispatch) -> StepReport:
        """The report the real worker stores for the step, with counts from the fake world."""
        ring = item.kwargs.get("ring")
        if item.actor == GENERATE_EVIDENCE_ACTOR:
            return EvidenceReport(id="pack-1", sha256="e" * 64)
        if item.actor == DEPLOY_RING_ACTOR:
            n = world.targets.get(ring or 0, 0)
            return DeployReport(targets=n, changed=n, assignments=n)
        if item.actor == POLL_RING_ACTOR:
            assert ring is not None
            number = self.polls[ring] = self.polls.get(ring, 0) + 1
            if self.health is not None:
                targets, updated, healthy, failed = self.health(ring, number)
            else:
                n = world.targets.get(ring, 0)
                targets, updated, healthy, failed = n, n, n, 0
            return PollReport(targets=targets, updated=updated, healthy=healthy, failed=failed)
        if item.actor == ROLLBACK_RING_ACTOR:
            n = world.targets.get(ring or 0, 0)
            return RollbackReport(targets=n, changed=n, assignments=n)
        raise AssertionError(item.actor)


def apply_status(body: dict[str, Any], outcome: Outcome) -> None:
    status = body.setdefault("status", {})
    for key, value in outcome.status.items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = copy.deepcopy(value)
    body["metadata"].setdefault("labels", {}).update(outcome.labels)


@dataclass
class Run:
    """One DeploymentTask driven through reconcile after reconcile."""

    spec: dict[str, Any]
    world: FakeWorld = field(default_factory=FakeWorld)
    worker: FakeWorker = field(default_factory=FakeWorker)
    policy: Policy = POLICY
    now: datetime = T0
    name: str = "t1"
    events: list[EventNote] = field(default_factory=list)
    audits: list[AuditNote] = field(default_factory=list)
    cr_events: list[EventNote] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)
    world_enabled: bool = True
    last: Outcome | None = None

    def __post_init__(self) -> None:
        self.body = {
            "apiVersion": "ringpilot.dev/v1alpha1",
            "kind": "DeploymentTask",
            "metadata": {
                "name": self.name,
                "namespace": "default",
                "uid": "0123456789abcdef",
                "generation": 1,
                "creationTimestamp": "2026-11-25T11:00:00Z",
                "labels": {CORRELATION_LABEL: "cid-1"},
            },
            "spec": {
                "app": "shop",
                "version": "2.0.0",
                "maxRing": 2,
                "requestedBy": "dev-publisher",
                "monitor": {"pollIntervalSeconds": 1},
                "risk": LOW_RISK,
                **self.spec,
            },
        }
        self.deps = Deps(settings=ControllerSettings(), policy=self.policy)

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.body.get("status") or {})

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")

    def condition(self, type_: str) -> dict[str, Any] | None:
        return next((c for c in self.status.get("conditions", []) if c["type"] == type_), None)

    def step(self, name: str, ring: int | None = None) -> dict[str, Any]:
        return next(s for s in self.status.get("steps", []) if s["name"] == name and s.get("ring") == ring)

    def reasons(self) -> list[str]:
        """Reasons of the Events posted so far."""
        return [e.reason for e in self.events]

    def actions(self) -> list[str]:
        """Actions of the audit rows written so far (every transition has one)."""
        return [a.action for a in self.audits]

    def edit(self, **spec: Any) -> None:
        self.body["spec"].update(spec)
        self.body["metadata"]["generation"] += 1

    def decide(self, approver: str, decision: str = "Approve", **conditions: Any) -> None:
        cr = next(iter(self.world.change_requests.values()))
        record: dict[str, Any] = {"approver": approver, "decision": decision}
        if conditions:
            record["conditions"] = conditions
        cr["spec"].setdefault("decisions", []).append(record)
        cr["metadata"]["generation"] += 1

    async def tick(self) -> Outcome:
        world = self.world if self.world_enabled else None
        outcome = await reconcile_with(world, DEPLOYMENT_TASK, self.body, self.deps, self.now)
        apply_status(self.body, outcome)
        self.events.extend(outcome.events)
        self.audits.extend(outcome.audits)
        self.last = outcome
        announced = self.worker.run(self.world, self.now)
        for cr in self.world.change_requests.values():
            task = self.body if cr["spec"].get("task") == self.name else None
            judged = evaluate_body(CHANGE_REQUEST, cr, self.deps.policy, self.now, task)
            if judged.restore:
                cr["spec"].update(judged.restore)
            apply_status(cr, judged.outcome)
            self.cr_events.extend(judged.outcome.events)
        # A stored report is announced (status.stepReported) and wakes the task's loop at once: the next
        # round comes after the worker's own time, not after the requeue (controller/operator/driving.py).
        wait = ANNOUNCED_REPORT_SECONDS if announced else (outcome.requeue_after_seconds or 1.0)
        self.now += timedelta(seconds=wait)
        return outcome

    async def until(self, *phases: str, ticks: int = 300) -> None:
        for _ in range(ticks):
            await self.tick()
            if self.phase in phases:
                return
        raise AssertionError(f"still {self.phase} after {ticks} ticks; events {self.reasons()}")
