"""Deletion: finalizers and deletionTimestamp, namespace and CRD cleanup, ownerReference GC.

Driven by the official client, including a `watch.Watch()` stream for the final DELETED event.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from controller.devkit.emulator import EmulatorServer
from tests.emulator.samples import GROUP, widget


def with_finalizer(name: str, namespace: str = "default") -> dict[str, Any]:
    body = widget(name, namespace)
    body["metadata"]["finalizers"] = ["example.dev/cleanup"]
    return body


def test_delete_with_finalizers_marks_then_removes(custom: Any) -> None:
    created = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", with_finalizer("w"))
    marked = custom.delete_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")
    meta = marked["metadata"]
    assert meta["deletionTimestamp"].endswith("Z")
    assert meta["deletionGracePeriodSeconds"] == 0
    assert meta["generation"] == created["metadata"]["generation"] + 1
    again = custom.delete_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")
    assert again["metadata"]["resourceVersion"] == meta["resourceVersion"]
    rv = meta["resourceVersion"]
    stream = watch.Watch().stream(
        custom.list_namespaced_custom_object,
        GROUP,
        "v1",
        "default",
        "widgets",
        resource_version=rv,
        timeout_seconds=2,
    )
    custom.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w", {"metadata": {"finalizers": None}})
    event = next(stream)
    assert event["type"] == "DELETED"
    assert int(event["object"]["metadata"]["resourceVersion"]) > int(rv)
    with pytest.raises(ApiException) as caught:
        custom.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")
    assert caught.value.status == 404


def test_no_new_finalizers_while_deleting(custom: Any) -> None:
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", with_finalizer("w"))
    custom.delete_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")
    with pytest.raises(ApiException) as caught:
        custom.patch_namespaced_custom_object(
            GROUP,
            "v1",
            "default",
            "widgets",
            "w",
            {"metadata": {"finalizers": ["example.dev/cleanup", "another"]}},
        )
    assert caught.value.status == 422
    assert "no new finalizers can be added if the object is being deleted" in json.loads(caught.value.body)["message"]


def test_deletion_timestamp_cannot_be_set_or_cleared_by_updates(custom: Any) -> None:
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", with_finalizer("w"))
    custom.delete_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")
    patched = custom.patch_namespaced_custom_object(
        GROUP, "v1", "default", "widgets", "w", {"metadata": {"deletionTimestamp": None}}
    )
    assert patched["metadata"]["deletionTimestamp"]


def test_namespace_deletion_cascades(server: EmulatorServer, custom: Any, core: Any) -> None:
    core.create_namespace({"metadata": {"name": "doomed"}})
    custom.create_namespaced_custom_object(GROUP, "v1", "doomed", "widgets", widget("plain", "doomed"))
    custom.create_namespaced_custom_object(GROUP, "v1", "doomed", "widgets", with_finalizer("held", "doomed"))
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "cm"}})
    terminating = core.delete_namespace("doomed")
    assert terminating["status"]["phase"] == "Terminating"
    assert core.read_namespace("doomed").status.phase == "Terminating"
    names = [
        i["metadata"]["name"] for i in custom.list_namespaced_custom_object(GROUP, "v1", "doomed", "widgets")["items"]
    ]
    assert names == ["held"]
    assert core.list_namespaced_config_map("doomed").items == []
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("doomed", {"metadata": {"name": "late"}})
    assert caught.value.status == 403
    assert "because it is being terminated" in caught.value.body
    custom.patch_namespaced_custom_object(GROUP, "v1", "doomed", "widgets", "held", {"metadata": {"finalizers": []}})
    with pytest.raises(ApiException) as caught:
        core.read_namespace("doomed")
    assert caught.value.status == 404


def test_empty_namespace_goes_away_at_once(core: Any) -> None:
    core.create_namespace({"metadata": {"name": "empty"}})
    core.delete_namespace("empty")
    assert "empty" not in {n.metadata.name for n in core.list_namespace().items}


def test_crd_deletion_waits_for_instance_finalizers(server: EmulatorServer, custom: Any, kube_api: Any) -> None:
    ext = client.ApiextensionsV1Api(kube_api)
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", with_finalizer("w"))
    ext.delete_custom_resource_definition(f"widgets.{GROUP}")
    crd = ext.read_custom_resource_definition(f"widgets.{GROUP}")
    assert crd.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as caught:
        custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("late"))
    assert caught.value.status == 405
    custom.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w", {"metadata": {"finalizers": []}})
    with pytest.raises(ApiException) as caught:
        ext.read_custom_resource_definition(f"widgets.{GROUP}")
    assert caught.value.status == 404


def test_owner_references_are_garbage_collected(server: EmulatorServer, custom: Any, core: Any) -> None:
    owner = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("owner"))
    other = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("other"))

    def ref(obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Widget",
            "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"],
        }

    core.create_namespaced_config_map("default", {"metadata": {"name": "child", "ownerReferences": [ref(owner)]}})
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "shared", "ownerReferences": [ref(owner), ref(other)]}}
    )
    core.create_namespaced_config_map("default", {"metadata": {"name": "orphan", "ownerReferences": [ref(other)]}})
    custom.delete_namespaced_custom_object(GROUP, "v1", "default", "widgets", "owner")
    names = {c.metadata.name for c in core.list_namespaced_config_map("default").items}
    assert names == {"shared", "orphan"}
    shared = core.read_namespaced_config_map("shared", "default")
    assert [r.name for r in shared.metadata.owner_references] == ["other"]
    custom.delete_namespaced_custom_object(GROUP, "v1", "default", "widgets", "other", propagation_policy="Orphan")
    orphan = core.read_namespaced_config_map("orphan", "default")
    assert orphan.metadata.owner_references is None
    assert core.read_namespaced_config_map("shared", "default").metadata.owner_references is None
