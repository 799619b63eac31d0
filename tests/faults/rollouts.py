"""What the fault tests share: a fresh app per scenario, a DeploymentTask through rings 0-1, and the
checks that every step ran once (step claims), every workload was patched once, every Event posted once."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from typing import Any

import yaml

from controller.api.deploymenttask import FINAL_PHASES
from controller.devkit.seeding import RING_NAMESPACES, SampleApp, configmap_manifest, deployment_manifest
from controller.storage.db import connect
from tests.fixtures.stack import Stack, wait_for

NS = "faults-e2e"
MONITOR = {"pollIntervalSeconds": 1, "deployTimeoutSeconds": 60, "soakSeconds": 3}


def new_app(stack: Stack, rings: range = range(2)) -> str:
    name = f"app-{uuid.uuid4().hex[:6]}"
    app = SampleApp(name, "1.0.0", replicas=1)
    for ring in rings:
        namespace = RING_NAMESPACES[ring]
        stack.core.create_namespaced_config_map(namespace, configmap_manifest(app, namespace))
        stack.apps.create_namespaced_deployment(namespace, deployment_manifest(app, namespace))
    return name


def apply_task(stack: Stack, name: str, app: str, max_ring: int = 1, **monitor: Any) -> None:
    doc = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "DeploymentTask",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "app": app,
            "version": "2.0.0",
            "maxRing": max_ring,
            "requestedBy": "dev-publisher",
            "monitor": {**MONITOR, **monitor},
        },
    }
    stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), user="dev-publisher")


def status_of(stack: Stack, name: str) -> dict[str, Any]:
    return stack.get("deploymenttasks", name, NS).get("status") or {}


def running_steps(status: dict[str, Any]) -> list[tuple[str, int | None]]:
    return [(s["name"], s.get("ring")) for s in status.get("steps") or [] if s.get("state") == "Running"]


def wait_final(stack: Stack, name: str, timeout_seconds: float = 180) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        status = status_of(stack, name)
        return status if status.get("phase") in FINAL_PHASES else None

    try:
        return wait_for(final, timeout_seconds, 0.2, f"DeploymentTask {name} to end")
    except AssertionError as error:
        raise AssertionError(f"{error}\nstatus: {json.dumps(status_of(stack, name), indent=1)[:6000]}") from None


def event_reasons(stack: Stack, name: str) -> Counter[str]:
    out = stack.kubectl("get", "events", "-n", NS, "-o", "json").stdout
    return Counter(e["reason"] for e in json.loads(out)["items"] if e["involvedObject"]["name"] == name)


def successful_runs(stack: Stack, correlation_id: str) -> Counter[str]:
    """Per step (its claim key without the attempt), how many attempts finished without error; Monitor's
    polls are many by design and left out."""
    with connect(stack.database_url) as conn:
        rows = conn.execute(
            "SELECT key, outcome FROM step_claims WHERE correlation_id = %s", (correlation_id,)
        ).fetchall()
    runs: Counter[str] = Counter()
    for row in rows:
        key, outcome = str(row["key"]), row["outcome"]
        if "/Monitor" in key:
            continue
        base = key.rsplit("/a", 1)[0]
        runs[base] += int(outcome is not None and "error" not in outcome)
    return runs


def assert_ran_once(stack: Stack, name: str, app: str, rings: range = range(2)) -> None:
    """The task succeeded, each ring's workload was patched once, each step and Event happened once."""
    obj = stack.get("deploymenttasks", name, NS)
    assert obj["status"]["phase"] == "Succeeded", json.dumps(obj["status"], indent=1)[:4000]
    for ring in rings:
        deployment = stack.apps.read_namespaced_deployment(app, RING_NAMESPACES[ring])
        assert deployment.metadata.generation == 2, f"ring {ring} patched {deployment.metadata.generation - 1} times"
        assert deployment.spec.template.spec.containers[0].image.endswith(":2.0.0")
    runs = successful_runs(stack, obj["metadata"]["labels"]["ringpilot.dev/correlation-id"])
    assert runs and set(runs.values()) == {1}, runs
    assert sum(1 for key in runs if "/Deploy/" in key) == len(rings), runs
    reasons = event_reasons(stack, name)
    assert reasons["MonitorStarted"] == len(rings) and reasons["RolloutSucceeded"] == 1, reasons


def wait_condition(stack: Stack, name: str, type_: str, status: str, timeout_seconds: float) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        for cond in status_of(stack, name).get("conditions") or []:
            if cond["type"] == type_ and cond["status"] == status:
                return dict(cond)
        return None

    return wait_for(probe, timeout_seconds, 0.1, f"{type_}={status} on {name}")


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
