"""Builders of Ringpilot objects for the agent tests: tasks, change requests, assignments, remediations.

They create the object through the API emulator and, because no controller runs in these tests, write
the status the controller would have written.
"""

from __future__ import annotations

from typing import Any

from controller.api.group import GROUP, VERSION
from tests.agent.conftest import Cluster

DIGEST = "4f9c2a7e1b3d5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcd"


def _make(
    cluster: Cluster,
    plural: str,
    kind: str,
    name: str,
    spec: dict[str, Any],
    status: dict[str, Any] | None,
    namespace: str = "default",
) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    created = cluster.create(plural, body, namespace)
    if status:
        cluster.patch_status(plural, name, status, namespace)
    return created


def task(
    cluster: Cluster,
    name: str,
    app: str = "web",
    version: str = "1.4.2",
    max_ring: int = 2,
    phase: str | None = "Deploying",
    requested_by: str = "dev-publisher",
    **status: Any,
) -> dict[str, Any]:
    spec = {"app": app, "version": version, "maxRing": max_ring, "requestedBy": requested_by}
    return _make(
        cluster,
        "deploymenttasks",
        "DeploymentTask",
        name,
        spec,
        {"phase": phase, **status} if phase else status or None,
    )


def change(
    cluster: Cluster,
    name: str,
    *,
    task_name: str = "payments-2-0-0",
    submitted_by: str = "dev-publisher",
    phase: str | None = "Pending",
    decisions: list[dict[str, Any]] | None = None,
    max_ring: int = 4,
) -> dict[str, Any]:
    spec = {
        "task": task_name,
        "app": "payments",
        "version": "2.0.0",
        "maxRing": max_ring,
        "riskScore": 62,
        "planDigest": DIGEST,
        "requiredApprovals": 1,
        "submittedBy": submitted_by,
        "decisions": decisions or [],
    }
    return _make(cluster, "changerequests", "ChangeRequest", name, spec, {"phase": phase} if phase else None)


def assignment(
    cluster: Cluster,
    name: str,
    app: str = "web",
    ring: int = 0,
    drift: str | None = None,
    namespace_ring: str = "ring-0-lab",
) -> dict[str, Any]:
    spec = {
        "app": app,
        "version": "1.4.1",
        "ring": ring,
        "target": {"plane": "kubernetes", "namespace": namespace_ring, "name": app},
    }
    status = {"sync": "Drifted", "drift": {"type": drift, "detail": f"{drift} seen"}} if drift else {"sync": "Synced"}
    return _make(cluster, "assignments", "Assignment", name, spec, status)


def remediation(cluster: Cluster, name: str, assignment_name: str, phase: str = "Remediating") -> dict[str, Any]:
    return _make(cluster, "remediations", "Remediation", name, {"assignment": assignment_name}, {"phase": phase})
