"""Drives the Remediation engine tick by tick in an in-memory world (tests/remediation/inmemory.py).

`Harness.reconcile` runs the real reconcile (`reconcile_with`: gather -> next_step -> carry_out ->
compose) and applies the Outcome to the stored body as the API server would, bumping its
resourceVersion; `Harness.work` plays the worker; `Harness.set_status` is a hand-written status.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from controller.api.assignment import Assignment
from controller.api.kinds import REMEDIATION
from controller.api.policy import Policy, load_policy
from controller.api.remediation import FixAction
from controller.core.outcome import Outcome
from controller.planes.base import PlaneError
from controller.reconcile.deps import Deps
from controller.reconcile.remediations import reconcile_with
from controller.reconcile.statusmemo import StatusMemo
from controller.remediation.acting import call_plane
from controller.remediation.classifying import target_of
from controller.remediation.ledger import RecordInfo
from controller.remediation.ports import ActRequest, RemediationPorts, act_key
from controller.remediation.provenance import ProvenanceSource
from controller.settings import ControllerSettings
from tests.remediation.inmemory import NOW, Claims, FakeCluster, FakePlane, MemoryLedger, Planes, Workload, spec

_uids = itertools.count(1)


def short_policy(**remediation: Any) -> Policy:
    base = load_policy(None)
    limits = base.remediation.model_copy(
        update={
            "initial_backoff_seconds": 60,
            "max_backoff_seconds": 240,
            "settle_seconds": 30,
            "verify_timeout_seconds": 120,
            "timeout_seconds": 600,
            **remediation,
        }
    )
    return base.model_copy(update={"remediation": limits})


@dataclass
class Harness:
    policy: Policy = field(default_factory=short_policy)
    cluster: FakeCluster = field(default_factory=FakeCluster)
    plane: FakePlane = field(default_factory=FakePlane)
    ledger: MemoryLedger = field(default_factory=MemoryLedger)
    claims: Claims = field(default_factory=Claims)
    enqueued: list[ActRequest] = field(default_factory=list)
    expedited: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    broker: bool = True
    provenance: ProvenanceSource | None = None
    memo: StatusMemo = field(default_factory=StatusMemo)

    @property
    def ports(self) -> RemediationPorts:
        return RemediationPorts(
            self.cluster,
            Planes({"kubernetes": self.plane}),
            self.ledger,
            self.policy,
            claim=self.claims,
            enqueue=self.enqueued.append if self.broker else None,
            expedite=self.expedited.append,
            provenance=self.provenance,
        )

    @property
    def deps(self) -> Deps:
        deps = Deps(settings=ControllerSettings(), policy=self.policy)
        deps.remediation = SimpleNamespace(ports=self.ports, memo=self.memo)
        return deps

    def assignment(self, name: str = "web", ring: int = 0, **extra: Any) -> dict[str, Any]:
        namespace = ["ring-0-lab", "ring-1-canary", "ring-2-pilot", "ring-3-department", "ring-4-global"][ring]
        self.plane.put(f"{namespace}/{name}", Workload(repository=f"registry.example.com/team/{name}"))
        return self.cluster.add_assignment(name, spec(app=name, ring=ring, namespace=namespace, **extra))

    def workload(self, name: str = "web", namespace: str = "ring-0-lab") -> Workload:
        return self.plane.workloads[f"{namespace}/{name}"]

    async def remediation(self, name: str, by_loop: bool = False, **spec_: Any) -> dict[str, Any]:
        uid = f"rem-{next(_uids)}"
        body = {
            "apiVersion": "ringpilot.dev/v1alpha1",
            "kind": "Remediation",
            "metadata": {
                "name": name,
                "namespace": "default",
                "uid": uid,
                "generation": 1,
                "resourceVersion": "1",
                "labels": {},
            },
            "spec": {"assignment": "web", **spec_},
            "status": {},
        }
        self.cluster.remediations[("default", name)] = body
        if by_loop:
            asg = self.cluster.assignments.get(("default", body["spec"]["assignment"]))
            await self.ledger.note_opened(
                RecordInfo(
                    "default",
                    name,
                    f"cid-{name}",
                    NOW,
                    assignment_uid=asg["metadata"]["uid"] if asg else None,
                    opened_by_loop=True,
                )
            )
        return body

    def body(self, name: str) -> dict[str, Any]:
        return self.cluster.remediations[("default", name)]

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.body(name)["status"]
        return status

    def set_status(self, name: str, status: dict[str, Any]) -> None:
        """Write the status by hand (a new resourceVersion, as the API server gives every write)."""
        body = self.body(name)
        body["status"] = status
        body["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)

    async def reconcile(self, name: str, now: datetime) -> Outcome:
        body = self.body(name)
        outcome = await reconcile_with(self.ports, REMEDIATION, body, self.deps, now)
        self.apply(name, outcome)
        return outcome

    def apply(self, name: str, outcome: Outcome) -> None:
        """Write `outcome` to the stored body as Kopf and the API server would."""
        body = self.body(name)
        status = dict(body["status"])
        for key, value in outcome.status.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        body["metadata"]["labels"].update(outcome.labels)
        self.outcomes.append(outcome)
        if outcome.status or outcome.labels:
            self.set_status(name, status)

    async def work(self, now: datetime) -> None:
        """The worker: perform every enqueued attempt once, recording the outcome in the claims."""
        while self.enqueued:
            request = self.enqueued.pop(0)
            key = act_key(request.uid, request.attempt)
            if key in self.claims.rows:
                continue
            attempt = await self.ledger.pending_attempt(request.uid)
            assert attempt is not None and attempt.action is not None
            asg = Assignment.from_body(self.cluster.assignments[("default", request.assignment)])
            try:
                result = await call_plane(self.plane, FixAction(attempt.action), target_of(asg.spec), asg, key)
            except PlaneError as error:
                self.claims.finish(key, {"ok": False, "detail": str(error)}, now)
                continue
            self.claims.finish(key, {"ok": True, "changed": result.changed, "detail": result.detail}, now)

    def events(self) -> list[str]:
        return [e.reason for o in self.outcomes for e in o.events]

    def events_text(self) -> list[str]:
        return [e.message for o in self.outcomes for e in o.events]

    def audits(self) -> list[str]:
        return [a.action for o in self.outcomes for a in o.audits]
