"""Reads the tools share: workloads per ring, Ringpilot objects by app, and how to describe them briefly.

Everything is read as the asking user (through `ToolContext.core` / `ToolContext.objects`), so a
user sees in chat only what Kubernetes RBAC lets them see. Which Deployments are workloads is the
rule of controller/kube/workloads.py; a workload's version is its image tag.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from agent.tools.base import ToolContext
from controller.api.assignment import Assignment, SyncState
from controller.api.changerequest import ChangePhase, ChangeRequest
from controller.api.deploymenttask import FINAL_PHASES, DeploymentTask, StepState, TaskPhase
from controller.api.labels import APP_NAME_LABEL
from controller.api.meta import CustomResource
from controller.api.remediation import Remediation, RemediationPhase
from controller.kube import workloads as discovery

REMEDIATION_FINAL = frozenset(
    {RemediationPhase.SUCCEEDED, RemediationPhase.ESCALATED, RemediationPhase.DENIED, RemediationPhase.FAILED}
)
R = TypeVar("R", bound=CustomResource)  # type: ignore[type-arg]


@dataclass(frozen=True)
class Workload:
    """One app's Deployment in one ring, as observed."""

    app: str
    ring: int
    namespace: str
    name: str
    version: str
    replicas: int
    ready: int
    available: bool

    @property
    def failing(self) -> bool:
        return self.ready < self.replicas or not self.available

    def line(self) -> str:
        health = "healthy" if not self.failing else f"NOT READY ({self.ready}/{self.replicas} ready)"
        return f"{self.app} {self.version} in ring {self.ring} ({self.namespace}/{self.name}): {health}"


def image_tag(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


def _workload(found: discovery.Found) -> Workload:
    item = found.deployment
    meta, spec, status = item["metadata"], item.get("spec") or {}, item.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    replicas = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    return Workload(
        app=(meta.get("labels") or {}).get(APP_NAME_LABEL, meta["name"]),
        ring=found.ring,
        namespace=found.namespace,
        name=meta["name"],
        version=image_tag(containers[0].get("image", "")) if containers else "unknown",
        replicas=replicas,
        ready=ready,
        available=conditions.get("Available", "True" if ready >= replicas else "False") == "True",
    )


async def ring_namespaces(ctx: ToolContext, ring: int | None = None) -> dict[str, int]:
    """Namespace → ring for every ring namespace (or only those of `ring`)."""
    return await discovery.ring_namespaces(ctx.core, ring)


async def workloads(ctx: ToolContext, *, ring: int | None = None, app: str | None = None) -> list[Workload]:
    """Workloads in ring namespaces, filtered by ring and app, sorted by ring then app."""
    found = await discovery.find_workloads(ctx.core, ring=ring, apps=[app] if app else None)
    return sorted((_workload(w) for w in found), key=lambda w: (w.ring, w.app, w.namespace))


async def objects_of(ctx: ToolContext, model: type[R], app: str | None = None) -> list[R]:
    """Every object of a kind in every namespace, optionally for one app, newest first."""
    items = await ctx.objects.list(model)
    if app is not None:
        items = [i for i in items if getattr(i.spec, "app", None) == app]
    return sorted(items, key=lambda i: i.metadata.name)


def task_active(task: DeploymentTask) -> bool:
    return task.status.phase not in FINAL_PHASES


def task_failing(task: DeploymentTask) -> bool:
    """A task that is still going but has a failed step, a failed ring or a False Ready condition."""
    if not task_active(task):
        return False
    if any(step.state is StepState.FAILED for step in task.status.steps):
        return True
    if any(ring.failed > 0 for ring in task.status.rings):
        return True
    return any(
        c.type == "Ready" and c.status.value == "False" and c.reason != "Accepted" for c in task.status.conditions
    )


def task_line(task: DeploymentTask) -> str:
    spec, status = task.spec, task.status
    phase = status.phase.value if status.phase else "Pending"
    ring = f", at ring {status.current_ring}" if status.current_ring is not None else ""
    who = f", requested by {spec.requested_by}" if spec.requested_by else ""
    action = "roll back" if spec.action.value == "Rollback" else "deploy"
    return f"{task.metadata.name}: {action} {spec.app} {spec.version} up to ring {spec.max_ring} — {phase}{ring}{who}"


def change_pending(change: ChangeRequest) -> bool:
    return change.status.phase in (None, ChangePhase.PENDING)


def change_line(change: ChangeRequest) -> str:
    spec = change.spec
    phase = change.status.phase.value if change.status.phase else "Pending"
    return (
        f"{change.metadata.name}: {spec.app} {spec.version} up to ring {spec.max_ring}, risk {spec.risk_score}, "
        f"{change.status.approvals}/{spec.required_approvals} approvals, submitted by {spec.submitted_by} — {phase}"
    )


def assignment_drifted(assignment: Assignment) -> bool:
    return assignment.status.sync is SyncState.DRIFTED


def remediation_active(remediation: Remediation) -> bool:
    return remediation.status.phase not in REMEDIATION_FINAL


def remediation_line(remediation: Remediation) -> str:
    phase = remediation.status.phase.value if remediation.status.phase else "Pending"
    drift = remediation.status.drift_type.value if remediation.status.drift_type else "unclassified drift"
    return (
        f"{remediation.metadata.name}: fix {drift} of {remediation.spec.assignment} — {phase}, "
        f"requested by {remediation.spec.requested_by}"
    )


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "unknown time"


def bullet(lines: Iterable[str], empty: str = "", limit: int = 20) -> str:
    """Lines as a bulleted list (at most `limit`, with a count of the rest), or `empty`."""
    items = list(lines)
    if not items:
        return empty
    shown = [f"- {line}" for line in items[:limit]]
    if len(items) > limit:
        shown.append(f"- … and {len(items) - limit} more")
    return "\n".join(shown)


def task_phase(task: DeploymentTask) -> str:
    return (task.status.phase or TaskPhase.PENDING).value
