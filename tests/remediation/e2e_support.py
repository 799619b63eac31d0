"""Helpers of the remediation e2e tests: a short-interval policy, workloads of their own, drift injection.

Each test uses its own app (a Deployment and ConfigMap in a ring namespace) so it neither disturbs
nor is disturbed by the sample apps other e2e tests roll out.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from controller.api.rbacrules import CONTROLLER_ACCOUNT
from controller.devkit.seeding import RING_NAMESPACES, SampleApp, configmap_manifest, deployment_manifest
from controller.planes.base import TargetRef
from controller.planes.kubernetes import KubernetesPlane
from controller.planes.manifests import config_hash
from controller.storage.db import connect, open_pool
from tests.fixtures.stack import POLICY, Stack, wait_for

GROUP, VERSION = "ringpilot.dev", "v1alpha1"
NS = "drift-e2e"
FREEZE = "e2e-remediation-freeze"

#: Remediation settings scaled to seconds: checks every 1-2 s, backoff 1 s / 2 s / 4 s.
REMEDIATION: dict[str, Any] = {
    "maxAttempts": 3,
    "initialBackoffSeconds": 1,
    "maxBackoffSeconds": 4,
    "autonomousMaxRing": 1,
    "maxConcurrentPerRing": 10,
    "maxConcurrentPerApp": 3,
    "maxPerHour": 500,
    "settleSeconds": 1,
    "verifyTimeoutSeconds": 5,
    "flapWindowIntervals": 15,
    "flapRecurrences": 2,
    "serviceDownGraceSeconds": 1,
    "checkIntervalSeconds": {"critical": 1, "high": 2, "standard": 2, "low": 4},
}
#: A deny window that always covers now, for ring 1 remediation only.
WINDOWS: list[dict[str, Any]] = [
    {"name": FREEZE, "kind": "deny", "appliesTo": ["remediate"], "rings": [1], "start": "00:00", "end": "00:00"}
]


def write_policy(path: Path) -> Path:
    data = yaml.safe_load(POLICY.read_text())
    data["remediation"] = REMEDIATION
    data["windows"] = WINDOWS
    path.write_text(yaml.safe_dump(data))
    return path


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:5]}"


def custom(stack: Stack) -> client.CustomObjectsApi:
    return stack.custom


def make_workload(stack: Stack, app: str, ring: int) -> str:
    """A Deployment and ConfigMap for `app` in the ring's namespace, available, with its manifest recorded
    (as a rollout records it); returns the ConfigMap's hash."""
    namespace = RING_NAMESPACES[ring]
    sample = SampleApp(app, replicas=1)
    config_map = configmap_manifest(sample, namespace)
    stack.core.create_namespaced_config_map(namespace, config_map)
    stack.apps.create_namespaced_deployment(namespace, deployment_manifest(sample, namespace))
    wait_for(lambda: available(stack, namespace, app), 20, what=f"{namespace}/{app} to be available")

    async def record() -> None:
        pool = await open_pool(stack.database_url, min_size=1, max_size=2)
        try:
            plane = KubernetesPlane(stack.api_client, pool)
            target = TargetRef("kubernetes", app, ring, namespace=namespace, name=app)
            await plane.apply(target, sample.version, None, f"e2e-{app}/rollout")
        finally:
            await pool.close()

    asyncio.run(record())
    return config_hash(config_map["data"])


def available(stack: Stack, namespace: str, name: str) -> bool:
    try:
        deployment = stack.apps.read_namespaced_deployment(name, namespace)
    except client.exceptions.ApiException:
        return False
    conditions = {c.type: c.status for c in (deployment.status.conditions or [])}
    return conditions.get("Available") == "True" and (deployment.status.ready_replicas or 0) >= 1


def image(stack: Stack, namespace: str, name: str) -> str:
    return str(stack.apps.read_namespaced_deployment(name, namespace).spec.template.spec.containers[0].image)


def set_image(stack: Stack, namespace: str, name: str, value: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": name, "image": value}]}}}}
    stack.apps.patch_namespaced_deployment(name, namespace, patch)


def make_assignment(
    stack: Stack,
    name: str,
    app: str,
    ring: int,
    sha: str | None,
    *,
    mode: str = "Enforce",
    criticality: str = "critical",
    **extra: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "app": app,
        "version": "1.4.1",
        "ring": ring,
        "criticality": criticality,
        "target": {"plane": "kubernetes", "namespace": RING_NAMESPACES[ring], "name": app},
        "drift": {"mode": mode},
        **extra,
    }
    if sha:
        spec["config"] = {"configMap": f"{app}-config", "sha256": sha}
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Assignment", "metadata": {"name": name}, "spec": spec}
    created: dict[str, Any] = stack.custom.create_namespaced_custom_object(GROUP, VERSION, NS, "assignments", body)
    return created


def make_remediation(stack: Stack, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Create a Remediation naming its requester, as the controller's identity (the one that may name anyone,
    system:ringpilot included), so the controller's own checks behind the webhooks decide."""
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Remediation", "metadata": {"name": name}, "spec": spec}
    custom = stack.custom_as(CONTROLLER_ACCOUNT)
    created: dict[str, Any] = custom.create_namespaced_custom_object(GROUP, VERSION, NS, "remediations", body)
    return created


def status_of(stack: Stack, plural: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = stack.get(plural, name, NS).get("status") or {}
    return status


def wait_status(stack: Stack, plural: str, name: str, predicate: Any, timeout: float = 30, what: str = "") -> Any:
    def probe() -> dict[str, Any] | None:
        status = status_of(stack, plural, name)
        return status if predicate(status) else None

    return wait_for(probe, timeout, 0.1, what or f"{plural}/{name}")


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def events_for(stack: Stack, name: str) -> list[Any]:
    items = stack.core.list_namespaced_event(NS).items
    return [e for e in items if e.involved_object.name == name]


def audit_rows(stack: Stack, correlation_id: str) -> list[dict[str, Any]]:
    with connect(stack.database_url) as conn:
        rows = conn.execute(
            "SELECT actor, kind, name, action, reason, detail FROM audit_events WHERE correlation_id = %s ORDER BY id",
            (correlation_id,),
        ).fetchall()
    return list(rows)


def attempts(stack: Stack, remediation: str | None = None, assignment_uid: str | None = None) -> list[dict[str, Any]]:
    with connect(stack.database_url) as conn:
        rows = conn.execute(
            "SELECT number, drift_type, started_at, finished_at, outcome, remediation FROM remediation_attempts "
            "WHERE remediation = coalesce(%s, remediation) AND assignment_uid = coalesce(%s, assignment_uid) "
            "ORDER BY started_at",
            (remediation, assignment_uid),
        ).fetchall()
    return list(rows)


def still(probe: Any, seconds: float) -> None:
    """Assert `probe()` stays truthy for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert probe()
        time.sleep(0.1)
