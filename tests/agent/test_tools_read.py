"""The read-only tools against the API emulator: deployments, status, failures, health, breakers, approvals,
tasks, history and integration failures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes import client
from prometheus_client import REGISTRY

from agent.health.breakers import BreakerBoard
from agent.llm.base import ToolCall
from agent.tools.base import HealthProbe
from agent.tools.registry import Invocation
from controller.storage.audit import AuditEvent, record_audit
from tests.agent import objects
from tests.agent.conftest import Harness


async def call(harness: Harness, tool: str, user: str = "dev-viewer", **arguments: Any) -> Invocation:
    return await harness.registry.invoke(
        ToolCall(id="t1", name=tool, arguments=arguments), harness.context(user), turn_id="m1"
    )


async def test_query_deployments_lists_each_apps_version_and_the_tasks_rolling_out(harness: Harness) -> None:
    objects.task(harness.cluster, "web-1-4-2", max_ring=3)
    objects.task(harness.cluster, "old", phase="Succeeded")
    result = await call(harness, "query_deployments", ring=2)
    assert result.outcome == "ok"
    assert result.output.text.splitlines() == [
        "Deployments in ring 2 (Pilot):",
        "- payments 1.4.1 in ring 2 (ring-2-pilot/payments): healthy",
        "- web 1.4.1 in ring 2 (ring-2-pilot/web): healthy",
        "Rolling out now:",
        "- web-1-4-2: deploy web 1.4.2 up to ring 3 — Deploying, requested by dev-publisher",
    ]
    everywhere = await call(harness, "query_deployments", app="payments")
    assert len(everywhere.output.data["workloads"]) == 5 and everywhere.output.data["tasks"] == []


async def test_check_status_of_an_app_and_of_a_task(harness: Harness) -> None:
    objects.task(
        harness.cluster,
        "web-1-4-2",
        currentRing=1,
        steps=[{"name": "Deploy", "state": "Running"}],
        rings=[{"ring": 0, "targets": 1, "updated": 1, "healthy": 1, "successRate": 1.0, "gate": "Passed"}],
        changeRequest="web-1-4-2-cab",
    )
    objects.assignment(harness.cluster, "web-ring-0", drift="VersionMismatch")
    objects.remediation(harness.cluster, "web-ring-0-fix", "web-ring-0")
    app = await call(harness, "check_status", app="web")
    assert app.output.data["versions"] == {"0": "1.4.1", "1": "1.4.1", "2": "1.4.1", "3": "1.4.1", "4": "1.4.1"}
    assert "Tasks in progress" in app.output.text and "web-ring-0: VersionMismatch" in app.output.text
    assert "web-ring-0-fix: fix unclassified drift of web-ring-0 — Remediating" in app.output.text
    task = await call(harness, "check_status", task="web-1-4-2")
    assert "step Deploy: Running" in task.output.text and "ring 0: 1/1 updated" in task.output.text
    assert "change request web-1-4-2-cab" in task.output.text
    assert (await call(harness, "check_status", app="nothing")).output.data == {"app": "nothing", "found": False}
    missing = await call(harness, "check_status", task="nope")
    assert (missing.outcome, missing.output.text) == ("error", "There is no deployment task named nope.")
    assert (await call(harness, "check_status")).output.text == "Name an app or a task to check."


async def test_failed_targets_cover_unready_workloads_drift_and_failed_rings(harness: Harness) -> None:
    assert (await call(harness, "list_failed_targets")).output.text == "No target has a deployment failure."
    apps = client.AppsV1Api(harness.cluster.admin)
    apps.patch_namespaced_deployment(
        "payments", "ring-1-canary", {"metadata": {"annotations": {"kubelet.ringpilot.dev/fail": "NeverReady"}}}
    )
    objects.assignment(harness.cluster, "web-ring-0", drift="ConfigurationDrift")
    objects.task(harness.cluster, "web-1-4-2", rings=[{"ring": 1, "targets": 2, "failed": 1}])
    for _ in range(100):
        result = await call(harness, "list_failed_targets")
        if result.output.data["not_ready"]:
            break
        await asyncio.sleep(0.02)
    assert result.output.data == {
        "not_ready": ["ring-1-canary/payments"],
        "drifted": ["web-ring-0"],
        "rollout_failures": ["web-1-4-2: 1 of 2 targets failed in ring 1"],
    }
    only_ring_0 = await call(harness, "list_failed_targets", ring=0)
    assert only_ring_0.output.data["not_ready"] == [] and only_ring_0.output.data["drifted"] == ["web-ring-0"]


async def test_health_reports_components_and_breakers(harness: Harness) -> None:
    async def ok() -> tuple[bool, str]:
        return True, "answers"

    async def broken() -> tuple[bool, str]:
        raise ConnectionError("refused")

    async def slow() -> tuple[bool, str]:
        await asyncio.sleep(5)
        return True, "late"

    harness.services.probes = (HealthProbe("postgresql", ok),)
    healthy = await call(harness, "check_health")
    assert healthy.output.data["status"] == "healthy"
    assert healthy.output.text.startswith("System health: healthy.\n- postgresql: ok (answers")
    board: BreakerBoard = harness.services.breakers
    for _ in range(5):
        await board.record_failure("plane-kubernetes", "HTTP 503")
    assert (await call(harness, "check_health")).output.data["status"] == "degraded"
    harness.services.probes = (HealthProbe("redis", broken),)
    from agent.tools import check_health

    original = check_health.probe

    async def quick(probe: HealthProbe, timeout_seconds: float = 0.05) -> dict[str, Any]:
        return await original(probe, timeout_seconds)

    check_health.probe = quick  # type: ignore[assignment]
    try:
        harness.services.probes = (HealthProbe("redis", broken), HealthProbe("kubernetes-api", slow))
        report = await call(harness, "check_health")
    finally:
        check_health.probe = original  # type: ignore[assignment]
    assert report.output.data["status"] == "unhealthy"
    assert "redis: DOWN (ConnectionError: refused" in report.output.text
    assert "kubernetes-api: DOWN (no answer within 0.05s" in report.output.text


async def test_circuit_breakers_open_half_open_and_closed(harness: Harness) -> None:
    empty = await call(harness, "list_circuit_breakers")
    assert empty.output.text == "No circuit breaker is open (0 known, all closed)."
    board: BreakerBoard = harness.services.breakers
    await board.record_success("llm-anthropic")
    for _ in range(5):
        await board.record_failure("plane-kubernetes", "HTTP 503 from the API")
    opened = await call(harness, "list_circuit_breakers")
    assert opened.output.data == {"breakers": [{"name": "plane-kubernetes", "state": "open", "failures": 5}]}
    assert "last error: HTTP 503 from the API" in opened.output.text
    every = await call(harness, "list_circuit_breakers", only_open=False)
    assert [b["name"] for b in every.output.data["breakers"]] == ["llm-anthropic", "plane-kubernetes"]
    assert not await board.allow("plane-kubernetes")
    assert open_gauge("plane-kubernetes") == 1 and open_gauge("llm-anthropic") == 0
    quick = BreakerBoard(board.redis, fail_max=1, reset_seconds=0.0)
    await quick.record_failure("probe", "x")
    assert open_gauge("probe") == 1
    assert await quick.allow("probe")  # cooled down: half-open lets one probe through
    assert (await quick.get("probe")).state.value == "half_open"
    assert open_gauge("probe") == 0
    assert (await quick.record_failure("probe", "still failing")).value == "open"
    await quick.record_success("probe")
    assert (await quick.get("probe")).state.value == "closed"
    assert open_gauge("probe") == 0


def open_gauge(breaker: str) -> float | None:
    """The process's `ringpilot_circuit_breaker_open{breaker}` sample, as /metrics would show it."""
    return REGISTRY.get_sample_value("ringpilot_circuit_breaker_open", {"breaker": breaker})


async def test_breakers_fail_open_when_redis_is_unreachable() -> None:
    from controller.storage.cache import redis_client

    dead = redis_client("redis://127.0.0.1:9/0", socket_timeout_seconds=0.2)
    board = BreakerBoard(dead)
    assert await board.allow("x")
    assert (await board.record_failure("x", "e")).value == "closed"
    await board.record_success("x")
    await dead.aclose()


async def test_integration_failures_from_components_breakers_and_the_audit_trail(harness: Harness) -> None:
    clean = await call(harness, "list_integration_failures")
    assert clean.output.text.startswith("No integration failures")
    for _ in range(2):
        await record_audit(
            harness.pool,
            AuditEvent(
                correlation_id="x",
                actor="system:ringpilot",
                kind="DeploymentTask",
                action="StepFailed",
                reason="plane timed out",
            ),
        )
    await record_audit(harness.pool, AuditEvent(correlation_id="x", actor="system:ringpilot", action="Accepted"))
    for _ in range(5):
        await harness.services.breakers.record_failure("plane-simulated", "timeout")

    async def down() -> tuple[bool, str]:
        return False, "connection refused"

    harness.services.probes = (HealthProbe("redis", down),)
    result = await call(harness, "list_integration_failures", hours=1)
    assert result.output.data == {
        "components_down": ["redis"],
        "open_breakers": ["plane-simulated"],
        "failed_steps": [{"kind": "DeploymentTask", "action": "StepFailed", "count": 2}],
    }
    assert "2 x StepFailed on DeploymentTask (last: plane timed out)" in result.output.text


async def test_pending_approvals_mark_the_ones_the_user_submitted(harness: Harness) -> None:
    assert (await call(harness, "list_pending_approvals")).output.text == "No change request is waiting for approval."
    objects.change(harness.cluster, "payments-2-0-0-cab")
    objects.change(harness.cluster, "done-cab", phase="Approved")
    mine = await call(harness, "list_pending_approvals", "dev-publisher")
    assert mine.output.data == {"pending": ["payments-2-0-0-cab"]}
    assert "risk 62, 0/1 approvals, submitted by dev-publisher — Pending" in mine.output.text
    assert mine.output.text.endswith("(yours: someone else must approve it)")


async def test_running_tasks_and_history(harness: Harness) -> None:
    assert (await call(harness, "list_tasks")).output.text == "Nothing is running right now."
    assert (await call(harness, "deployment_history")).output.text == "No deployment history yet."
    objects.task(
        harness.cluster, "a-old", phase="Succeeded", startedAt="2026-01-01T00:00:00Z", finishedAt="2026-01-01T01:00:00Z"
    )
    objects.task(
        harness.cluster, "b-failing", startedAt="2026-02-01T00:00:00Z", steps=[{"name": "Deploy", "state": "Failed"}]
    )
    objects.task(harness.cluster, "c-pay", app="payments", version="2.0.0", startedAt="2026-03-01T00:00:00Z")
    objects.remediation(harness.cluster, "fix-1", "web-ring-0")
    running = await call(harness, "list_tasks")
    assert [t["name"] for t in running.output.data["tasks"]] == ["b-failing", "c-pay"]
    assert "(FAILING)" in running.output.text and running.output.data["remediations"] == ["fix-1"]
    assert len((await call(harness, "list_tasks", include_finished=True)).output.data["tasks"]) == 3
    history = await call(harness, "deployment_history")
    assert [t["name"] for t in history.output.data["tasks"]] == ["c-pay", "b-failing", "a-old"]
    assert "finished 2026-01-01 01:00 UTC" in history.output.text
    latest_web = await call(harness, "deployment_history", app="web", limit=1)
    assert [t["name"] for t in latest_web.output.data["tasks"]] == ["b-failing"]


async def test_a_tool_called_the_wrong_way_says_which_way_it_works() -> None:
    from agent.tools.execute_remediation import ExecuteRemediation
    from agent.tools.query_deployments import QueryDeployments

    reader, actor = QueryDeployments(), ExecuteRemediation()
    ctx: Any = None
    with pytest.raises(TypeError, match="read-only"):
        await reader.plan(reader.parse({}), ctx)
    with pytest.raises(TypeError, match="read-only"):
        await reader.execute(reader.parse({}), ctx, "a1")
    with pytest.raises(TypeError, match="mutating"):
        await actor.run(actor.parse({}), ctx)
