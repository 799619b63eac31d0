"""The reconcile's I/O for DeploymentTasks: gather the facts `next_step` needs, carry out what it asks.

`World` is the port (tests pass an in-memory fake); `KubeWorld` is the real one over the Kubernetes
API, PostgreSQL, the execution planes and the dramatiq dispatcher. `gather` reads only what the
task's state calls for; `carry_out` writes the ChangeRequest and enqueues the steps before the
status is written, so a lost status write only repeats work that is idempotent by key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from controller.api.changerequest import ChangeRequest
from controller.api.deploymenttask import Action, EvidenceRef, TaskPhase
from controller.api.group import GROUP, VERSION
from controller.api.kinds import CHANGE_REQUEST, DEPLOYMENT_TASK
from controller.api.labels import CHANGE_TASK_LABEL, CORRELATION_LABEL, OBJECT_APP_LABEL
from controller.api.policy import Policy
from controller.core.errors import Unavailable
from controller.kube.client import ApiClient, CustomObjects, KubeError
from controller.messaging.broker import STEPS_QUEUE
from controller.messaging.dispatching import Dispatcher
from controller.orchestration import evidencestore, history
from controller.orchestration.facts import ChangeRequestView, Facts, TaskView, Validation
from controller.orchestration.steps import DEPLOY_RING_ACTOR, Claim, Dispatch
from controller.orchestration.transitions import TERMINAL, ChangeRequestWrite, Transitions
from controller.planes.catalog import PlaneSource
from controller.storage import claims as claim_store
from controller.storage.db import Pool

_TERMINAL_VALUES = {p.value for p in TERMINAL}

#: The operator's index of DeploymentTasks in flight by app (a `kopf.Index`: app -> a store of entries).
LiveTasks = Mapping[str, Iterable[Mapping[str, Any]]]


class World(Protocol):
    async def live_tasks_of(self, app: str) -> list[dict[str, Any]]: ...

    async def target_count(self, plane: str, app: str, ring: int) -> int: ...

    async def rollback_candidates(self, app: str, plane: str, version: str, rings: list[int]) -> int: ...

    async def claims(self, keys: list[str]) -> dict[str, Claim]: ...

    async def change_request(self, namespace: str, name: str) -> ChangeRequest | None: ...

    async def write_change_request(self, write: ChangeRequestWrite, owner_uid: str) -> None: ...

    async def verify_evidence(self, ref: EvidenceRef) -> str | None: ...

    async def queued_steps(self) -> int: ...

    def dispatch(self, item: Dispatch, correlation_id: str) -> None: ...


def _undone_by(spec: dict[str, Any], rollback: TaskView) -> bool:
    """A cancelled rollout of the version `rollback` undoes."""
    deploy = spec.get("action", Action.DEPLOY.value) == Action.DEPLOY.value
    return deploy and spec.get("version") == rollback.spec.version and bool(spec.get("cancel"))


def live_task_entry(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the "live tasks of an app" index keeps of a DeploymentTask: what `earlier_active_task` reads."""
    meta, spec, status = body.get("metadata") or {}, body.get("spec") or {}, body.get("status") or {}
    return {
        "metadata": {k: meta.get(k) for k in ("uid", "namespace", "name", "creationTimestamp")},
        "spec": {k: spec.get(k) for k in ("app", "version", "action", "cancel")},
        "status": {"phase": status.get("phase")},
    }


def earlier_active_task(tasks: Iterable[Mapping[str, Any]], me: TaskView, created: str) -> str | None:
    """`namespace/name` of a live task for the same app created before this one (ties: by name)."""
    mine = (created, me.namespace, me.name)
    for raw in tasks:
        meta, spec, status = raw.get("metadata") or {}, raw.get("spec") or {}, raw.get("status") or {}
        if meta.get("uid") == me.uid or spec.get("app") != me.spec.app:
            continue
        if status.get("phase") in _TERMINAL_VALUES:
            continue
        if me.spec.action is Action.ROLLBACK and _undone_by(spec, me):
            continue  # the rollout this rollback undoes, being cancelled: the rollback pre-empts it (fast path)
        theirs = (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace")), str(meta.get("name")))
        if theirs < mine:
            return f"{theirs[1]}/{theirs[2]}"
    return None


async def gather(world: World, task: TaskView, policy: Policy, now: datetime, created: str = "") -> Facts:
    """The facts for one reconcile of `task` (see the module docstring)."""
    status = task.status
    restartable = status.plan is None and status.validated_generation != task.generation
    if status.phase in TERMINAL and not restartable:
        return Facts(now=now, policy=policy)
    validation = None
    plan = status.plan
    if plan is None or plan.generation != task.generation:
        spec = task.spec
        app, plane = (plan.app, plan.plane.value) if plan and task.deploy_started() else (spec.app, spec.plane.value)
        counts = await asyncio.gather(*(world.target_count(plane, app, r) for r in range(spec.max_ring + 1)))
        conflict = earlier_active_task(await world.live_tasks_of(task.spec.app), task, created)
        candidates = None
        if spec.action is Action.ROLLBACK:
            candidates = await world.rollback_candidates(app, plane, spec.version, list(range(spec.max_ring + 1)))
        validation = Validation(tuple(counts), conflict, candidates)
    found = await world.claims(task.running_keys())
    change_request = None
    if status.change_request:
        cr = await world.change_request(task.namespace, status.change_request)
        if cr is not None:
            change_request = ChangeRequestView(
                name=cr.metadata.name,
                spec_digest=cr.spec.plan_digest,
                phase=cr.status.phase,
                status_digest=cr.status.plan_digest,
                conditions=cr.status.effective_conditions,
                approvals=cr.status.approvals,
                required=cr.spec.required_approvals,
                outcomes=tuple(cr.status.outcomes),
            )
    return Facts(now, policy, validation, found, change_request, queued_steps=await world.queued_steps())


def wants_evidence_check(task: TaskView, t: Transitions, facts: Facts) -> bool:
    """True when `t`, decided without reading the evidence pack, is a decision that must not be taken
    on a tampered one: the pack has just arrived, a ring's Deploy is sent, or the rollout succeeds."""
    ref = t.status.evidence
    if facts.evidence_checked or ref is None:
        return False
    if task.status.evidence != ref:
        return True
    if t.status.phase is TaskPhase.SUCCEEDED and task.status.phase is not TaskPhase.SUCCEEDED:
        return True
    return any(item.actor == DEPLOY_RING_ACTOR for item in t.dispatches)


async def check_evidence(world: World, t: Transitions, facts: Facts) -> Facts:
    """`facts` with the stored pack of `t` read: the reconcile decides again with them."""
    ref = t.status.evidence
    problem = await world.verify_evidence(ref) if ref is not None else None
    return replace(facts, evidence_checked=True, evidence_problem=problem)


async def carry_out(world: World, task: TaskView, t: Transitions) -> None:
    """Write the ChangeRequest and enqueue the steps `next_step` asked for."""
    if t.change_request is not None:
        await world.write_change_request(t.change_request, task.uid)
    for item in t.dispatches:
        world.dispatch(item, task.correlation_id)


class KubeWorld:
    """`World` over the Kubernetes API, PostgreSQL, the planes and the broker."""

    def __init__(
        self,
        api_client: ApiClient,
        pool: Pool,
        planes: PlaneSource,
        dispatcher: Dispatcher | None,
    ) -> None:
        self.objects = CustomObjects(api_client)
        self.pool = pool
        self.planes = planes
        self.dispatcher = dispatcher
        self.live_tasks: LiveTasks | None = None

    def attach(self, live_tasks: LiveTasks) -> None:
        """Read the live tasks of an app from the operator's Kopf index (`live_deploymenttasks`)."""
        self.live_tasks = live_tasks

    async def live_tasks_of(self, app: str) -> list[dict[str, Any]]:
        if self.live_tasks is not None:
            return [dict(entry) for entry in self.live_tasks.get(app, ())]
        # no operator (a tool or a test): one list of every task
        every = await self.objects.list_raw(DEPLOYMENT_TASK)
        return [raw for raw in every if (raw.get("spec") or {}).get("app") == app]

    async def target_count(self, plane: str, app: str, ring: int) -> int:
        return len(await self.planes.get(plane).targets(app, ring))

    async def rollback_candidates(self, app: str, plane: str, version: str, rings: list[int]) -> int:
        return len(await history.deployed_version(self.pool, app, plane, version, rings))

    async def claims(self, keys: list[str]) -> dict[str, Claim]:
        found: dict[str, Claim] = {}
        for key in keys:
            row = await claim_store.get(self.pool, key)
            if row is not None:
                found[key] = Claim(row.claimed_at, row.finished, row.outcome)
        return found

    async def change_request(self, namespace: str, name: str) -> ChangeRequest | None:
        return await self.objects.find(ChangeRequest, namespace, name)

    async def write_change_request(self, write: ChangeRequestWrite, owner_uid: str) -> None:
        spec = write.spec.to_wire()
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": CHANGE_REQUEST.kind,
            "metadata": {
                "name": write.name,
                "namespace": write.namespace,
                "labels": {
                    CORRELATION_LABEL: write.correlation_id,
                    OBJECT_APP_LABEL: write.spec.app,
                    CHANGE_TASK_LABEL: write.spec.task,
                },
                "ownerReferences": [
                    {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": DEPLOYMENT_TASK.kind,
                        "name": write.spec.task,
                        "uid": owner_uid,
                    }
                ],
            },
            "spec": spec,
        }
        try:
            await self.objects.create_raw(CHANGE_REQUEST, write.namespace, body)
            return
        except KubeError as error:
            if not error.conflict:
                raise
        patch = {"spec": {k: v for k, v in spec.items() if k != "decisions"}}
        await self.objects.patch(CHANGE_REQUEST, write.namespace, write.name, patch)

    async def verify_evidence(self, ref: EvidenceRef) -> str | None:
        return await evidencestore.verify(self.pool, ref.id, ref.sha256)

    async def task_body(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The DeploymentTask a ChangeRequest names, as stored (None when there is none)."""
        return await self.objects.find_raw(DEPLOYMENT_TASK, namespace, name)

    async def restore_change_request(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        """Write the controller's own values back over tampered ChangeRequest spec fields."""
        try:
            await self.objects.patch(CHANGE_REQUEST, namespace, name, {"spec": spec})
        except KubeError as error:
            if not error.not_found:
                raise

    async def queued_steps(self) -> int:
        return await self.dispatcher.queued(STEPS_QUEUE) if self.dispatcher is not None else 0

    def dispatch(self, item: Dispatch, correlation_id: str) -> None:
        if self.dispatcher is None:
            raise Unavailable("No broker: RINGPILOT_REDIS_URL is required to run DeploymentTasks", 10.0)
        kwargs = {k: v for k, v in item.kwargs.items() if v is not None}
        self.dispatcher.enqueue(item.actor, STEPS_QUEUE, key=item.key, correlation_id=correlation_id, kwargs=kwargs)
