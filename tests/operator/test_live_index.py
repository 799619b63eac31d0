"""The operator's index of live DeploymentTasks by app: a new task's conflict check reads no task list.

Before the index, validating a task listed every DeploymentTask ever stored (perf.md: "every validation
lists all DeploymentTasks"), so the check grew with history. Here two tasks for one app run under the real
handlers; the second is refused as `ActiveChangeExists` while the emulator sees no list of DeploymentTasks.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from kubernetes import client

from controller.devkit.seeding import RING_NAMESPACES, SampleApp, deployment_manifest, seed_rings
from tests.operator.conftest import LiveOperator, eventually

if TYPE_CHECKING:
    from controller.devkit.emulator import EmulatorServer


def task_lists(emulator: EmulatorServer) -> int:
    """DeploymentTask lists the emulator served (a watch is not a list)."""
    return sum(
        1
        for r in list(emulator.requests)
        if r.method == "GET" and r.path.rstrip("/").endswith("/deploymenttasks") and "watch=" not in r.query
    )


async def kopf_watching(emulator: EmulatorServer) -> None:
    """Wait until Kopf's own list-then-watch of DeploymentTasks has begun (it starts after the startup handlers)."""

    async def opened() -> bool:
        return any(r.path.endswith("/deploymenttasks") and "watch=true" in r.query for r in list(emulator.requests))

    await eventually(opened, "Kopf's watch of DeploymentTasks", 30)


def task(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "DeploymentTask",
        "metadata": {"name": name},
        "spec": {"app": app, "version": "2.0.0", "maxRing": 0},
    }


def invalid_reason(obj: dict[str, Any]) -> str | None:
    found = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "InvalidSpec"]
    return found[0]["reason"] if found and found[0]["status"] == "True" else None


async def test_a_second_task_for_a_live_app_is_refused_from_the_index_without_listing_tasks(
    operator: LiveOperator, emulator: EmulatorServer, cluster: Any
) -> None:
    seed_rings(cluster, apps=())
    client.AppsV1Api(cluster).create_namespaced_deployment(
        RING_NAMESPACES[0], deployment_manifest(SampleApp("indexed", "1.0.0"), RING_NAMESPACES[0])
    )
    await kopf_watching(emulator)
    before = task_lists(emulator)
    await operator.create("deploymenttasks", task("first", "indexed"))

    async def first_validated() -> Any:
        status = (await operator.get("deploymenttasks", "first")).get("status") or {}
        return status.get("plan")

    await eventually(first_validated, "the first task's plan", 30)  # it now waits for its evidence: live
    await operator.create("deploymenttasks", task("second", "indexed"))

    async def second_refused() -> str | None:
        return invalid_reason(await operator.get("deploymenttasks", "second"))

    assert await eventually(second_refused, "InvalidSpec on the second task", 30) == "ActiveChangeExists"
    second = await operator.get("deploymenttasks", "second")
    assert second["status"]["phase"] == "Failed"
    assert "default/first is already changing indexed" in str(second["status"]["conditions"])
    assert task_lists(emulator) == before  # both validations read the index, not the API


async def test_a_task_for_another_app_is_not_refused_by_the_index(
    operator: LiveOperator, emulator: EmulatorServer, cluster: Any
) -> None:
    seed_rings(cluster, apps=())
    apps = client.AppsV1Api(cluster)
    for app in ("left", "right"):
        apps.create_namespaced_deployment(
            RING_NAMESPACES[0], deployment_manifest(SampleApp(app, "1.0.0"), RING_NAMESPACES[0])
        )
    await operator.create("deploymenttasks", task("left-task", "left"))
    await operator.create("deploymenttasks", task("right-task", "right"))

    async def planned(name: str) -> Any:
        return ((await operator.get("deploymenttasks", name)).get("status") or {}).get("plan")

    for name in ("left-task", "right-task"):
        await eventually(partial(planned, name), f"the plan of {name}", 30)
        assert invalid_reason(await operator.get("deploymenttasks", name)) is None
