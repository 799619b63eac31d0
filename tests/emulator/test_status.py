"""The status subresource, `metadata.generation` rules, and the scale subresource.

Driven by the official client: `*_status` and `*_scale` methods, as Kopf and kubectl use them.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.emulator.samples import GROUP, widget


def make(custom: Any, name: str = "w") -> dict[str, Any]:
    result: dict[str, Any] = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget(name))
    return result


def test_status_on_create_and_main_endpoint_is_ignored(custom: Any) -> None:
    body = widget("w")
    body["status"] = {"phase": "Ready"}
    created = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", body)
    assert "status" not in created
    patched = custom.patch_namespaced_custom_object(
        GROUP, "v1", "default", "widgets", "w", {"status": {"phase": "Ready"}}
    )
    assert "status" not in patched
    assert patched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_status_writes_change_only_status_and_keep_generation(custom: Any) -> None:
    make(custom)
    patched = custom.patch_namespaced_custom_object_status(
        GROUP,
        "v1",
        "default",
        "widgets",
        "w",
        {"spec": {"app": "other"}, "metadata": {"labels": {"x": "y"}}, "status": {"phase": "Ready"}},
    )
    assert patched["status"] == {"phase": "Ready"}
    assert patched["spec"]["app"] == "web"
    assert "labels" not in patched["metadata"]
    assert patched["metadata"]["generation"] == 1
    current = custom.get_namespaced_custom_object_status(GROUP, "v1", "default", "widgets", "w")
    current["status"] = {"phase": "Failed"}
    replaced = custom.replace_namespaced_custom_object_status(GROUP, "v1", "default", "widgets", "w", current)
    assert replaced["status"] == {"phase": "Failed"}
    del replaced["status"]
    cleared = custom.replace_namespaced_custom_object_status(GROUP, "v1", "default", "widgets", "w", replaced)
    assert "status" not in cleared


def test_status_write_with_stale_resource_version_conflicts(custom: Any) -> None:
    created = make(custom)
    custom.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w", {"spec": {"maxRing": 2}})
    created["status"] = {"phase": "Ready"}
    with pytest.raises(ApiException) as caught:
        custom.replace_namespaced_custom_object_status(GROUP, "v1", "default", "widgets", "w", created)
    assert caught.value.status == 409


def test_generation_counts_spec_changes_only(custom: Any) -> None:
    make(custom)
    labels = custom.patch_namespaced_custom_object(
        GROUP, "v1", "default", "widgets", "w", {"metadata": {"labels": {"a": "b"}}}
    )
    assert labels["metadata"]["generation"] == 1
    spec = custom.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w", {"spec": {"maxRing": 2}})
    assert spec["metadata"]["generation"] == 2
    status = custom.patch_namespaced_custom_object_status(
        GROUP, "v1", "default", "widgets", "w", {"status": {"observedGeneration": 2}}
    )
    assert status["metadata"]["generation"] == 2


def test_without_status_subresource_status_is_ordinary_and_bumps_generation(custom: Any) -> None:
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Gear",
        "metadata": {"name": "g"},
        "spec": {"teeth": 1},
        "status": {"ok": True},
    }
    created = custom.create_cluster_custom_object(GROUP, "v1", "gears", body)
    assert created["status"] == {"ok": True}
    patched = custom.patch_cluster_custom_object(GROUP, "v1", "gears", "g", {"status": {"ok": False}})
    assert patched["status"] == {"ok": False}
    assert patched["metadata"]["generation"] == 2
    with pytest.raises(ApiException) as caught:
        custom.patch_cluster_custom_object_status(GROUP, "v1", "gears", "g", {"status": {"ok": True}})
    assert caught.value.status == 404


def test_deployment_status_subresource(server: Any, kube_api: Any) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                },
            },
            "status": {"readyReplicas": 5},
        },
    )
    assert apps.read_namespaced_deployment("web", "default").status.ready_replicas is None
    patched = apps.patch_namespaced_deployment_status("web", "default", {"status": {"readyReplicas": 2, "replicas": 2}})
    assert patched.status.ready_replicas == 2
    assert patched.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 3}})
    assert scaled.metadata.generation == 2
    assert scaled.status.ready_replicas == 2
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment("web", "default", {"spec": {"selector": {"matchLabels": {"app": "x"}}}})
    assert caught.value.status == 422
    assert "field is immutable" in caught.value.body


def test_deployment_scale_subresource(server: Any, kube_api: Any) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                },
            },
        },
    )
    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert scale.spec.replicas == 2
    assert scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 4
    scale = apps.read_namespaced_deployment_scale("web", "default")
    scale.spec.replicas = 1
    assert apps.replace_namespaced_deployment_scale("web", "default", scale).spec.replicas == 1
    scale.spec.replicas = -1
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment_scale("web", "default", {"spec": {"replicas": -1}})
    assert caught.value.status == 422


def test_namespace_status_and_finalize_paths(core: Any) -> None:
    core.create_namespace({"metadata": {"name": "ns1"}})
    status = core.read_namespace_status("ns1")
    assert status.status.phase == "Active"
    assert status.spec.finalizers == ["kubernetes"]
    patched = core.patch_namespace_status("ns1", {"status": {"phase": "Active", "conditions": []}})
    assert patched.status.phase == "Active"
