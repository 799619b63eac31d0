"""The metrics: names and labels by the house rules, the /metrics endpoint, and what moves them."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from dramatiq.brokers.stub import StubBroker
from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from controller.core.outcome import AuditNote
from controller.messaging.dispatching import Dispatcher
from controller.telemetry import domainmetrics, metrics
from controller.telemetry.scopes import mark_requeue, reconcile_scope
from controller.telemetry.serving import serve_metrics

#: Labels that would carry one series per object (forbidden at 100k Assignments).
OBJECT_LABELS = {"name", "namespace", "uid", "object", "user", "conversation", "task", "assignment", "app"}


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def defined() -> list[Counter | Gauge | Histogram]:
    return [m for m in vars(metrics).values() if isinstance(m, Counter | Gauge | Histogram)]


def test_every_metric_is_prefixed_in_base_units_and_labelled_without_object_names() -> None:
    found = defined()
    assert len(found) >= 25
    for metric in found:
        name = metric._name
        assert name.startswith("ringpilot_"), name
        assert not set(metric._labelnames) & OBJECT_LABELS, (name, metric._labelnames)
        assert not name.endswith(("_ms", "_milliseconds")), name
        if isinstance(metric, Histogram):
            assert name.endswith("_seconds"), name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_the_metrics_endpoint_serves_build_info_after_refreshing() -> None:
    refreshed: list[int] = []

    async def refresh() -> None:
        refreshed.append(1)
        metrics.QUEUE_DEPTH.labels("steps").set(7)

    metrics.mark_build()
    async with (
        serve_metrics(free_port(), host="127.0.0.1", refresh=refresh) as port,
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    assert refreshed == [1]
    assert 'ringpilot_build_info{version="' in text
    assert 'ringpilot_queue_depth{queue="steps"} 7.0' in text


async def test_a_taken_port_leaves_the_process_running_without_metrics() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        async with serve_metrics(taken.getsockname()[1], host="127.0.0.1") as port:
            assert port == 0


def test_reconciles_are_counted_by_kind_and_result() -> None:
    before = {r: value("ringpilot_reconcile_total", kind="Probe", result=r) for r in ("success", "requeue", "error")}

    def requeued() -> None:
        with reconcile_scope("Probe", "default", "p1"):
            mark_requeue()
            raise RuntimeError("requeued")

    def broken() -> None:
        with reconcile_scope("Probe", "default", "p1"):
            raise ValueError("broken")

    with reconcile_scope("Probe", "default", "p1"):
        pass
    with pytest.raises(RuntimeError, match="requeued"):
        requeued()
    with pytest.raises(ValueError, match="broken"):
        broken()
    after = {r: value("ringpilot_reconcile_total", kind="Probe", result=r) for r in before}
    assert {r: after[r] - before[r] for r in before} == {"success": 1, "requeue": 1, "error": 1}
    assert value("ringpilot_reconcile_duration_seconds_count", kind="Probe") >= 3


def test_enqueued_steps_are_counted_by_queue_and_step() -> None:
    before = value("ringpilot_step_enqueued_total", queue="steps", step="orchestration_poll_ring")
    broker = StubBroker()
    broker.declare_queue("steps")
    Dispatcher(broker).enqueue("orchestration_poll_ring", "steps", key="k/1", correlation_id="c-1", kwargs={"ring": 0})
    assert value("ringpilot_step_enqueued_total", queue="steps", step="orchestration_poll_ring") == before + 1


def task_body(uid: str, phase: str | None, created: datetime, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"uid": uid, "creationTimestamp": created.isoformat().replace("+00:00", "Z")},
        "spec": {"monitor": {"soakSeconds": 60}, **spec},
        "status": {"phase": phase} if phase else {},
    }


def test_a_rollout_moves_the_phase_gauge_gate_results_rollbacks_and_duration() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    created = now - timedelta(seconds=300)
    gates = value("ringpilot_ring_gate_total", ring="0", result="pass")
    failed = value("ringpilot_ring_gate_total", ring="1", result="fail")
    rollbacks = value("ringpilot_rollbacks_total", ring="0", reason="gate")
    durations = value("ringpilot_deploymenttask_duration_seconds_sum", result="rolledback")

    domainmetrics.observe_outcome("DeploymentTask", task_body("t1", None, created), {"phase": "Monitoring"}, [], now)
    assert value("ringpilot_deploymenttasks", phase="Monitoring") >= 1
    domainmetrics.refresh(now + timedelta(seconds=90))
    assert value("ringpilot_deploymenttask_monitoring_overdue_seconds") == pytest.approx(30)

    audits = [
        AuditNote("GatePassed", "system:ringpilot", "ok", {"ring": 0}),
        AuditNote("GateFailed", "system:ringpilot", "bad", {"ring": 1}),
        AuditNote("RingRolledBack", "system:ringpilot", "back", {"ring": 0}),
        AuditNote("GateFailed", "system:ringpilot", "phase", {"phase": "RolledBack"}),
    ]
    monitoring = value("ringpilot_deploymenttasks", phase="Monitoring")
    body = task_body("t1", "Monitoring", created)
    domainmetrics.observe_outcome("DeploymentTask", body, {"phase": "RolledBack"}, audits, now)
    assert value("ringpilot_ring_gate_total", ring="0", result="pass") == gates + 1
    assert value("ringpilot_ring_gate_total", ring="1", result="fail") == failed + 1
    assert value("ringpilot_rollbacks_total", ring="0", reason="gate") == rollbacks + 1
    assert value("ringpilot_deploymenttasks", phase="Monitoring") == monitoring - 1
    assert value("ringpilot_deploymenttask_duration_seconds_sum", result="rolledback") == durations + 300
    domainmetrics.refresh(now + timedelta(seconds=90))
    assert value("ringpilot_deploymenttask_monitoring_overdue_seconds") == 0
    rolled_back = value("ringpilot_deploymenttasks", phase="RolledBack")
    domainmetrics.forget("DeploymentTask", "t1")
    assert value("ringpilot_deploymenttasks", phase="RolledBack") == rolled_back - 1


def test_approvals_remediations_assignments_and_admissions_are_counted() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    created = now - timedelta(seconds=120)
    stamp = created.isoformat()
    change = {"metadata": {"uid": "cr1", "creationTimestamp": stamp}, "spec": {"maxRing": 2}, "status": {}}
    pending = value("ringpilot_changerequests_pending", blast_radius="ring2")
    domainmetrics.observe_outcome("ChangeRequest", change, {"phase": "Pending"}, [], now)
    assert value("ringpilot_changerequests_pending", blast_radius="ring2") == pending + 1
    waits = value("ringpilot_approval_wait_seconds_count", result="approved")
    decided = {**change, "status": {"phase": "Pending"}}
    domainmetrics.observe_outcome("ChangeRequest", decided, {"phase": "Approved"}, [], now)
    assert value("ringpilot_changerequests_pending", blast_radius="ring2") == pending
    assert value("ringpilot_approval_wait_seconds_count", result="approved") == waits + 1

    fixed = value("ringpilot_remediations_total", drift_type="VersionDrift", outcome="succeeded")
    mttr = value("ringpilot_remediation_seconds_sum")
    remediation = {"metadata": {"uid": "r1", "creationTimestamp": stamp}, "spec": {}, "status": {"phase": "Verifying"}}
    status = {"phase": "Succeeded", "driftType": "VersionDrift"}
    domainmetrics.observe_outcome("Remediation", remediation, status, [], now)
    domainmetrics.observe_outcome("Remediation", {**remediation, "status": status}, status, [], now)  # no change
    assert value("ringpilot_remediations_total", drift_type="VersionDrift", outcome="succeeded") == fixed + 1
    assert value("ringpilot_remediation_seconds_sum") == mttr + 120

    drifted = value("ringpilot_assignments", sync="Drifted", criticality="critical")
    assignment = {"metadata": {"uid": "a1"}, "spec": {"criticality": "critical"}, "status": {"sync": "Synced"}}
    domainmetrics.observe_outcome("Assignment", assignment, {"sync": "Drifted"}, [], now)
    assert value("ringpilot_assignments", sync="Drifted", criticality="critical") == drifted + 1
    domainmetrics.observe_outcome("Assignment", assignment, {"sync": "Synced"}, [], now)
    assert value("ringpilot_assignments", sync="Drifted", criticality="critical") == drifted

    refused = value("ringpilot_admission_requests_total", webhook="remediation", allowed="false")
    note = AuditNote("SpecRejected", "system:ringpilot", "bad spec")
    domainmetrics.observe_outcome("Remediation", remediation, {}, [note], now)
    assert value("ringpilot_admission_requests_total", webhook="remediation", allowed="false") == refused + 1


async def test_a_drift_sweep_cycle_is_timed_even_when_it_fails() -> None:
    from controller.remediation.sweeping import DriftSweeper

    before = value("ringpilot_drift_sweep_duration_seconds_count")

    sweeper = DriftSweeper.__new__(DriftSweeper)
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the half-built sweeper raises
        await sweeper.cycle(datetime.now(UTC))
    assert value("ringpilot_drift_sweep_duration_seconds_count") == before + 1
