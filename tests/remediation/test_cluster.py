"""KubeCluster against the API emulator: the calls the sweep and the controller make, and their errors."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from controller.core.errors import Unavailable
from controller.devkit.seeding import apply_crds
from controller.remediation.cluster import KubeCluster, ObjectRef, tasks_in_flight
from tests.fixtures.kube import api_client
from tests.remediation.inmemory import NOW, spec

GROUP, VERSION = "ringpilot.dev", "v1alpha1"


def assignment(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Assignment", "metadata": {"name": name}, "spec": spec()}


async def test_assignments_remediations_tasks_and_events(kube_api: client.ApiClient) -> None:
    apply_crds(kube_api)
    core = client.CoreV1Api(kube_api)
    for ns in ("team-a", "team-b"):
        core.create_namespace({"metadata": {"name": ns}})
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(GROUP, VERSION, "team-a", "assignments", assignment("one"))
    custom.create_namespaced_custom_object(GROUP, VERSION, "team-b", "assignments", assignment("two"))
    cluster = KubeCluster(kube_api)
    assert {a["metadata"]["name"] for a in await cluster.list_assignments(None)} == {"one", "two"}
    assert [a["metadata"]["name"] for a in await cluster.list_assignments(["team-b"])] == ["two"]
    assert (await cluster.get_assignment("team-a", "one"))["spec"]["app"] == "web"  # type: ignore[index]
    assert await cluster.get_assignment("team-a", "two") is None
    patched = await cluster.patch_assignment_status("team-a", "one", {"sync": "Synced"})
    assert patched is not None and patched["status"]["sync"] == "Synced"
    assert await cluster.patch_assignment_status("team-a", "gone", {"sync": "Synced"}) is None
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Remediation",
        "metadata": {"name": "fix"},
        "spec": {"assignment": "one", "requestedBy": "dev-operator"},
    }
    created = await cluster.create_remediation("team-a", body)
    assert created["metadata"]["uid"]
    assert (await cluster.get_remediation("team-a", "fix"))["metadata"]["uid"] == created["metadata"]["uid"]  # type: ignore[index]
    assert await cluster.get_remediation("team-a", "nope") is None
    with pytest.raises(client.exceptions.ApiException):
        await cluster.create_remediation("team-a", body)  # already exists: a real error, not "unavailable"
    with pytest.raises(Unavailable):
        await cluster.create_remediation("no-such-namespace", {**body, "metadata": {"name": "x"}})
    task = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DeploymentTask",
        "metadata": {"name": "ship"},
        "spec": {"app": "web", "version": "2.0.0", "maxRing": 1},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, "team-a", "deploymenttasks", task)
    tasks = await cluster.list_deployment_tasks()
    assert tasks_in_flight(tasks) == {}  # no phase yet: not running
    tasks[0]["status"] = {"phase": "Deploying"}
    assert tasks_in_flight(tasks) == {"web": "ship"}
    entry = {"metadata": {"name": "idx"}, "spec": {"app": "api"}, "status": {"phase": "Monitoring"}}
    cluster.attach({"api": [entry]})  # the operator's index: what is in flight, without a list
    assert tasks_in_flight(await cluster.list_deployment_tasks()) == {"api": "idx"}
    await cluster.post_event(
        ObjectRef("Assignment", "team-a", "one", "uid-1"), "DriftDetected", "x" * 2000, "Warning", NOW
    )
    [event] = core.list_namespaced_event("team-a").items
    assert (event.reason, event.type, event.involved_object.name, len(event.message)) == (
        "DriftDetected",
        "Warning",
        "one",
        1024,
    )
    await cluster.post_event(  # the same check repeated (a controller restarted mid-sweep): posted once
        ObjectRef("Assignment", "team-a", "one", "uid-1"), "DriftDetected", "x" * 2000, "Warning", NOW
    )
    assert len(core.list_namespaced_event("team-a").items) == 1
    await cluster.post_event(ObjectRef("Assignment", "gone-ns", "one"), "DriftDetected", "m", "Normal", NOW)


async def test_an_unreachable_api_server_is_unavailable() -> None:
    dead = api_client("http://127.0.0.1:9")
    cluster = KubeCluster(dead)
    with pytest.raises(Unavailable, match="Could not list Assignments"):
        await cluster.list_assignments(None)
    await cluster.post_event(ObjectRef("Assignment", "a", "b"), "R", "m", "Normal", NOW)  # best effort: no raise
    dead.close()
