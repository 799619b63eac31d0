"""Scraping the controller's and the worker's /metrics around a rollout, a remediation and a chat turn.

The session's stack (real controller and worker processes, the emulator, PostgreSQL, Redis): each
scenario reads both endpoints before and after, and checks the counters and histograms it should move.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from controller.devkit.seeding import RING_NAMESPACES, SampleApp, configmap_manifest, deployment_manifest
from tests.fixtures.stack import Stack, wait_for
from tests.remediation.e2e_support import NS as DRIFT_NS
from tests.remediation.e2e_support import make_assignment, make_remediation, make_workload, set_image, wait_status

pytestmark = pytest.mark.e2e
NS = "telemetry-e2e"

Reading = Callable[[str, dict[str, str]], float]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


class Scrape:
    """Both endpoints at one moment; `value(process, name, **labels)` sums the matching series."""

    def __init__(self, stack: Stack) -> None:
        self.seen = {process: samples(stack.scrape(process)) for process in ("controller", "worker")}

    def value(self, process: str, name: str, **labels: str) -> float:
        wanted = set(labels.items())
        return sum(v for (n, got), v in self.seen[process].items() if n == name and wanted <= got)


def moved(before: Scrape, after: Scrape, process: str, name: str, **labels: str) -> float:
    return after.value(process, name, **labels) - before.value(process, name, **labels)


@pytest.fixture(scope="module")
def ns(stack: Stack) -> str:
    for name in (NS, DRIFT_NS):
        doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        stack.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    return NS


def test_both_processes_serve_build_info(stack: Stack) -> None:
    scrape = Scrape(stack)
    assert scrape.value("controller", "ringpilot_build_info") == 1
    assert scrape.value("worker", "ringpilot_build_info") >= 1


def settled(stack: Stack) -> Scrape:
    """A scrape taken when no step is queued or running: the stack is shared with earlier tests, whose
    last messages would otherwise be counted in this test's deltas."""

    def quiet() -> Scrape | None:
        first = Scrape(stack)
        if first.value("controller", "ringpilot_queue_depth", queue="steps") or first.value(
            "worker", "dramatiq_messages_inprogress"
        ):
            return None
        time.sleep(1.0)
        second = Scrape(stack)
        steps = "ringpilot_step_duration_seconds_count"
        return second if second.value("worker", steps) == first.value("worker", steps) else None

    return wait_for(quiet, 60, 0.2, "no step queued or running")


def test_a_rollout_moves_reconciles_gates_steps_and_task_duration(stack: Stack, ns: str) -> None:
    app = f"tel-{uuid.uuid4().hex[:6]}"
    sample = SampleApp(app, "1.0.0", replicas=1)
    for ring in (0, 1):
        stack.core.create_namespaced_config_map(
            RING_NAMESPACES[ring], configmap_manifest(sample, RING_NAMESPACES[ring])
        )
        stack.apps.create_namespaced_deployment(
            RING_NAMESPACES[ring], deployment_manifest(sample, RING_NAMESPACES[ring])
        )
    before = settled(stack)
    doc: dict[str, Any] = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "DeploymentTask",
        "metadata": {"name": app, "namespace": ns},
        "spec": {
            "app": app,
            "version": "2.0.0",
            "maxRing": 1,
            "requestedBy": "dev-publisher",
            "monitor": {"pollIntervalSeconds": 1, "deployTimeoutSeconds": 30},
        },
    }
    stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), user="dev-publisher")
    wait_for(
        lambda: (stack.get("deploymenttasks", app, ns).get("status") or {}).get("phase") == "Succeeded",
        90,
        0.3,
        f"DeploymentTask {app} to succeed",
    )
    after = wait_for(
        lambda: (
            (s := Scrape(stack)).value(
                "worker", "ringpilot_step_duration_seconds_count", step="orchestration_deploy_ring"
            )
            >= before.value("worker", "ringpilot_step_duration_seconds_count", step="orchestration_deploy_ring") + 2
            and s
        ),
        10,
        0.3,
        "the worker's step histogram",
    )
    assert (
        moved(before, after, "controller", "ringpilot_deploymenttask_duration_seconds_count", result="succeeded") == 1
    )
    for ring in ("0", "1"):
        assert moved(before, after, "controller", "ringpilot_ring_gate_total", ring=ring, result="pass") == 1
    assert moved(before, after, "controller", "ringpilot_step_enqueued_total", step="orchestration_deploy_ring") == 2
    assert moved(before, after, "controller", "ringpilot_reconcile_total", kind="DeploymentTask") >= 5
    assert moved(before, after, "controller", "ringpilot_reconcile_duration_seconds_count", kind="DeploymentTask") >= 5
    # At least this task's two deploys (ok). The worker's histogram is process-wide, and an earlier test's
    # task may have a redelivered step land in this window (it does nothing, and is counted as a delivery).
    assert (
        moved(
            before,
            after,
            "worker",
            "ringpilot_step_duration_seconds_count",
            step="orchestration_deploy_ring",
            result="ok",
        )
        >= 2
    )
    assert moved(before, after, "worker", "dramatiq_messages_total", actor_name="orchestration_deploy_ring") >= 2
    assert after.value("controller", "ringpilot_deploymenttasks", phase="Succeeded") >= 1
    assert ("ringpilot_queue_depth", frozenset({("queue", "steps")})) in after.seen["controller"]


def test_remediations_move_the_outcome_counter_by_drift_type_and_outcome(stack: Stack, ns: str) -> None:
    app = f"tel-{uuid.uuid4().hex[:6]}"
    sha = make_workload(stack, app, 0)
    make_assignment(stack, app, app, 0, sha, mode="Warn", artifact="registry.example.com/team/" + app)
    set_image(stack, RING_NAMESPACES[0], app, f"registry.example.com/team/{app}:9.9.9")
    before = Scrape(stack)
    make_remediation(stack, f"{app}-dry", {"assignment": app, "requestedBy": "dev-operator", "dryRun": True})
    make_remediation(stack, f"{app}-ghost", {"assignment": "no-such-assignment", "requestedBy": "dev-operator"})
    final = ("Succeeded", "Escalated", "Failed", "Stalled", "Denied", "Planned")
    ended = [
        wait_status(stack, "remediations", name, lambda s: s.get("phase") in final, 60, f"{name} to end")
        for name in (f"{app}-dry", f"{app}-ghost")
    ]
    assert [s["phase"] for s in ended] == ["Planned", "Denied"]
    after = Scrape(stack)
    for status in ended:
        labels = {"drift_type": status.get("driftType") or "unknown", "outcome": status["phase"].lower()}
        assert moved(before, after, "controller", "ringpilot_remediations_total", **labels) >= 1, labels
    assert moved(before, after, "controller", "ringpilot_remediations_total") >= 2  # the sweep may end others
    assert moved(before, after, "controller", "ringpilot_remediation_seconds_count") == 0  # nothing was verified
    assert moved(before, after, "controller", "ringpilot_reconcile_total", kind="Remediation") >= 2


def test_a_chat_turn_moves_turns_model_requests_and_tool_calls(stack: Stack, ns: str) -> None:
    before = Scrape(stack)
    doc = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "Conversation",
        "metadata": {"name": "tel-chat", "namespace": ns},
        "spec": {"user": "dev-viewer", "messages": [{"id": "m1", "text": "what runs in canary?"}]},
    }
    stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), user="dev-viewer")
    wait_for(
        lambda: (stack.get("conversations", "tel-chat", ns).get("status") or {}).get("answered") == 1,
        30,
        0.2,
        "the turn to be answered",
    )
    after = wait_for(
        lambda: (
            (s := Scrape(stack)).value("worker", "ringpilot_chat_turns_total")
            > before.value("worker", "ringpilot_chat_turns_total")
            and s
        ),
        10,
        0.3,
        "the worker's turn counter",
    )
    assert moved(before, after, "worker", "ringpilot_chat_turns_total", provider="offline", outcome="answered") == 1
    assert moved(before, after, "worker", "ringpilot_chat_turn_duration_seconds_count", provider="offline") == 1
    assert moved(before, after, "worker", "ringpilot_llm_requests_total", provider="offline", outcome="ok") >= 1
    assert moved(before, after, "worker", "ringpilot_tool_calls_total", tool="query_deployments", outcome="ok") == 1
    assert moved(before, after, "controller", "ringpilot_step_enqueued_total", queue="turns") >= 1
