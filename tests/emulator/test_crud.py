"""CRUD through the official `kubernetes` client: create, get, list, replace, delete and their errors.

Driven by the official client (`CustomObjectsApi`, `CoreV1Api`, `AppsV1Api`), as operators use it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from controller.devkit.emulator import EmulatorServer
from tests.emulator.samples import GROUP, widget

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def status_of(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


def test_create_returns_201_with_server_fields(custom: Any) -> None:
    created = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w1"))
    meta = created["metadata"]
    assert created["kind"] == "Widget"
    assert created["apiVersion"] == f"{GROUP}/v1"
    assert meta["generation"] == 1
    assert isinstance(meta["resourceVersion"], str)
    assert int(meta["resourceVersion"]) > 0
    assert RFC3339_Z.match(meta["creationTimestamp"])
    assert re.match(r"^[0-9a-f-]{36}$", meta["uid"])
    assert created["spec"]["maxRing"] == 1  # schema default


def test_resource_versions_come_from_one_global_counter(custom: Any, core: Any) -> None:
    a = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("a"))
    cm = core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    b = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("b"))
    rvs = [
        int(a["metadata"]["resourceVersion"]),
        int(cm.metadata.resource_version),
        int(b["metadata"]["resourceVersion"]),
    ]
    assert rvs == sorted(rvs)
    assert len(set(rvs)) == 3


def test_generate_name_makes_unique_names(core: Any) -> None:
    body = {
        "metadata": {"generateName": "ev-"},
        "involvedObject": {"kind": "Pod", "name": "x"},
        "reason": "Tested",
        "message": "hello",
        "type": "Normal",
    }
    names = {core.create_namespaced_event("default", body).metadata.name for _ in range(5)}
    assert len(names) == 5
    assert all(re.match(r"^ev-[a-z0-9]{5}$", n) for n in names)


def test_get_missing_is_a_404_status(custom: Any) -> None:
    with pytest.raises(ApiException) as caught:
        custom.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "nope")
    assert caught.value.status == 404
    assert status_of(caught.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'widgets.example.dev "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": GROUP, "kind": "widgets"},
        "code": 404,
    }


def test_duplicate_create_is_already_exists(custom: Any) -> None:
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("dup"))
    with pytest.raises(ApiException) as caught:
        custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("dup"))
    assert caught.value.status == 409
    assert status_of(caught.value)["reason"] == "AlreadyExists"


def test_create_in_missing_namespace_is_404(custom: Any, core: Any) -> None:
    with pytest.raises(ApiException) as caught:
        custom.create_namespaced_custom_object(GROUP, "v1", "ghost", "widgets", widget("w", namespace=None))
    assert caught.value.status == 404
    assert status_of(caught.value)["message"] == 'namespaces "ghost" not found'
    assert {n.metadata.name for n in core.list_namespace().items} >= {"default", "kube-system"}


def test_list_has_kind_and_resource_version_per_namespace_and_across(custom: Any, core: Any) -> None:
    core.create_namespace({"metadata": {"name": "other"}})
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("a"))
    custom.create_namespaced_custom_object(GROUP, "v1", "other", "widgets", widget("b", "other"))
    everywhere = custom.list_cluster_custom_object(GROUP, "v1", "widgets")
    here = custom.list_namespaced_custom_object(GROUP, "v1", "other", "widgets")
    assert everywhere["kind"] == "WidgetList"
    assert everywhere["apiVersion"] == f"{GROUP}/v1"
    assert [i["metadata"]["name"] for i in everywhere["items"]] == ["a", "b"]
    assert [i["metadata"]["name"] for i in here["items"]] == ["b"]
    assert int(everywhere["metadata"]["resourceVersion"]) >= int(here["items"][0]["metadata"]["resourceVersion"])


def test_list_paginates_with_limit_and_continue(custom: Any) -> None:
    for i in range(5):
        custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget(f"w{i}"))
    first = custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets", limit=2)
    assert len(first["items"]) == 2
    assert first["metadata"]["remainingItemCount"] == 3
    second = custom.list_namespaced_custom_object(
        GROUP, "v1", "default", "widgets", limit=10, _continue=first["metadata"]["continue"]
    )
    assert [i["metadata"]["name"] for i in second["items"]] == ["w2", "w3", "w4"]
    assert "continue" not in second["metadata"]
    with pytest.raises(ApiException) as caught:
        custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets", _continue="garbage!")
    assert caught.value.status == 400


def test_replace_with_stale_resource_version_conflicts(custom: Any) -> None:
    created = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    created["spec"]["maxRing"] = 2
    updated = custom.replace_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w", created)
    assert updated["metadata"]["generation"] == 2
    with pytest.raises(ApiException) as caught:
        custom.replace_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w", created)
    assert caught.value.status == 409
    assert status_of(caught.value)["message"].startswith('Operation cannot be fulfilled on widgets.example.dev "w"')


def test_replace_of_custom_resource_requires_resource_version(custom: Any) -> None:
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    with pytest.raises(ApiException) as caught:
        custom.replace_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w", widget("w"))
    assert caught.value.status == 422
    assert "metadata.resourceVersion: Invalid value: 0: must be specified for an update" in caught.value.body


def test_builtin_replace_without_resource_version_is_unconditional(core: Any) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    replaced = core.replace_namespaced_config_map("cm", "default", {"metadata": {"name": "cm"}, "data": {"a": "2"}})
    assert replaced.data == {"a": "2"}


def test_noop_update_keeps_the_resource_version(custom: Any) -> None:
    created = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    same = custom.replace_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w", created)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_name_and_namespace_mismatches_are_bad_requests(custom: Any) -> None:
    created = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    created["metadata"]["name"] = "other"
    with pytest.raises(ApiException) as caught:
        custom.replace_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w", created)
    assert caught.value.status == 400
    assert "does not match the name on the URL" in caught.value.body
    with pytest.raises(ApiException) as caught:
        custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("x", "kube-system"))
    assert caught.value.status == 400


def test_invalid_names_are_rejected(custom: Any, core: Any) -> None:
    with pytest.raises(ApiException) as caught:
        custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("Bad_Name"))
    assert caught.value.status == 422
    message = status_of(caught.value)["message"]
    assert message.startswith(
        'Widget.example.dev "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
        "a lowercase RFC 1123 subdomain"
    )
    with pytest.raises(ApiException) as caught:
        core.create_namespace({"metadata": {"name": "a.b"}})
    assert "RFC 1123 label" in status_of(caught.value)["message"]
    with pytest.raises(ApiException) as caught:
        custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget(""))
    assert "metadata.name: Required value: name or generateName is required" in status_of(caught.value)["message"]


def test_bad_labels_are_rejected(core: Any) -> None:
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("default", {"metadata": {"name": "c", "labels": {"a": "b c"}}})
    assert caught.value.status == 422
    assert "metadata.labels" in caught.value.body


def test_delete_returns_the_custom_object_and_a_status_for_builtins(custom: Any, core: Any) -> None:
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    gone = custom.delete_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")
    assert gone["metadata"]["name"] == "w"
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    status = core.delete_namespaced_config_map("cm", "default")
    assert status["status"] == "Success"
    assert status["details"]["name"] == "cm"
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("cm", "default")
    assert caught.value.status == 404


def test_delete_preconditions_conflict(core: Any) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    with pytest.raises(ApiException) as caught:
        core.delete_namespaced_config_map("cm", "default", body={"preconditions": {"uid": "not-it"}})
    assert caught.value.status == 409
    assert "Precondition failed: UID" in caught.value.body


def test_delete_collection_with_selector(custom: Any) -> None:
    for name, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        body = widget(name)
        body["metadata"]["labels"] = {"tier": tier}
        custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", body)
    custom.delete_collection_namespaced_custom_object(GROUP, "v1", "default", "widgets", label_selector="tier=x")
    left = custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")
    assert [i["metadata"]["name"] for i in left["items"]] == ["c"]


def test_dry_run_does_not_persist(custom: Any) -> None:
    created = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"), dry_run="All")
    assert created["spec"]["maxRing"] == 1
    assert custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")["items"] == []


def test_same_object_is_served_through_every_version(custom: Any) -> None:
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    beta = custom.get_namespaced_custom_object(GROUP, "v1beta1", "default", "widgets", "w")
    assert beta["apiVersion"] == f"{GROUP}/v1beta1"
    beta["spec"]["maxRing"] = 3
    custom.replace_namespaced_custom_object(GROUP, "v1beta1", "default", "widgets", "w", beta)
    stable = custom.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")
    assert stable["apiVersion"] == f"{GROUP}/v1"
    assert stable["spec"]["maxRing"] == 3


def test_cluster_scoped_custom_resources(custom: Any) -> None:
    body = {"apiVersion": f"{GROUP}/v1", "kind": "Gear", "metadata": {"name": "g1"}, "spec": {"teeth": 12}}
    created = custom.create_cluster_custom_object(GROUP, "v1", "gears", body)
    assert "namespace" not in created["metadata"]
    assert custom.get_cluster_custom_object(GROUP, "v1", "gears", "g1")["spec"] == {"teeth": 12}


def test_wrong_kind_in_body_is_a_bad_request(custom: Any) -> None:
    body = widget("w")
    body["kind"] = "Gear"
    with pytest.raises(ApiException) as caught:
        custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", body)
    assert caught.value.status == 400


def test_builtin_kinds_round_trip(server: EmulatorServer, kube_api: Any) -> None:
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    secret = core.create_namespaced_secret("default", {"metadata": {"name": "s"}, "stringData": {"pw": "x"}})
    assert secret.data == {"pw": "eA=="}
    assert secret.type == "Opaque"
    svc = core.create_namespaced_service(
        "default", {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}
    )
    assert svc.spec.cluster_ip.startswith("10.96.")
    assert svc.spec.ports[0].target_port == 80
    core.create_namespaced_service_account("default", {"metadata": {"name": "sa"}})
    pod = core.create_namespaced_pod(
        "default", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    )
    assert pod.status.phase == "Pending"
    deployment = apps.create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]},
                },
            },
        },
    )
    assert deployment.spec.replicas == 1
    assert deployment.metadata.generation == 1
    lease = client.CoordinationV1Api(kube_api).create_namespaced_lease(
        "default", {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}}
    )
    assert lease.spec.holder_identity == "me"


def test_deployment_validation(kube_api: Any) -> None:
    apps = client.AppsV1Api(kube_api)
    with pytest.raises(ApiException) as caught:
        apps.create_namespaced_deployment(
            "default",
            {
                "metadata": {"name": "bad"},
                "spec": {
                    "selector": {"matchLabels": {"app": "x"}},
                    "template": {
                        "metadata": {"labels": {"app": "y"}},
                        "spec": {"containers": [{"name": "c"}]},
                    },
                },
            },
        )
    body = status_of(caught.value)
    assert body["code"] == 422
    fields = {c["field"] for c in body["details"]["causes"]}
    assert fields == {"spec.template.metadata.labels", "spec.template.spec.containers[0].image"}
    assert body["message"].startswith('Deployment.apps "bad" is invalid: [')
