"""Discovery and OpenAPI documents, and CRDs becoming served (and unserved) as they come and go.

Read with plain HTTP (`requests`) and the official client, as kubectl and Kopf read them.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client.rest import ApiException

from controller.devkit.emulator import EmulatorServer
from controller.devkit.emulator.resourcetypes import version_priority
from tests.emulator.samples import GROUP, WIDGET_CRD, widget


def get(server: EmulatorServer, path: str) -> Any:
    response = requests.get(server.url + path, timeout=5)
    response.raise_for_status()
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


def resources(server: EmulatorServer, group_version: str) -> dict[str, dict[str, Any]]:
    path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    return {r["name"]: r for r in get(server, path)["resources"]}


def test_version_and_legacy_core(emulator: EmulatorServer) -> None:
    version = get(emulator, "/version")
    assert (version["major"], version["minor"]) == ("1", "32")
    assert get(emulator, "/api")["versions"] == ["v1"]
    core = resources(emulator, "v1")
    assert core["namespaces"]["namespaced"] is False
    assert core["namespaces"]["shortNames"] == ["ns"]
    assert {"events", "configmaps", "secrets", "pods", "services", "serviceaccounts"} <= set(core)
    assert core["pods"]["categories"] == ["all"]
    assert get(emulator, "/api/v1")["groupVersion"] == "v1"


def test_groups_and_subresource_entries(emulator: EmulatorServer) -> None:
    groups = {g["name"]: g for g in get(emulator, "/apis")["groups"]}
    assert {"apps", "events.k8s.io", "apiextensions.k8s.io", "coordination.k8s.io"} <= set(groups)
    assert groups["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    apps = resources(emulator, "apps/v1")
    deployments = apps["deployments"]
    assert deployments["verbs"] == [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]
    assert deployments["singularName"] == "deployment"
    assert deployments["shortNames"] == ["deploy"]
    status = apps["deployments/status"]
    assert "shortNames" not in status
    assert status["verbs"] == ["get", "patch", "update"]
    assert apps["deployments/scale"]["kind"] == "Scale"
    crds = resources(emulator, "apiextensions.k8s.io/v1")["customresourcedefinitions"]
    assert crds["namespaced"] is False
    assert crds["shortNames"] == ["crd", "crds"]
    assert get(emulator, "/apis/apps")["name"] == "apps"


def test_unknown_paths_are_404_status(emulator: EmulatorServer) -> None:
    for path in (
        "/apis/nope.dev",
        "/apis/nope.dev/v1",
        "/apis/apps/v1/nopes",
        "/api/v1/namespaces/default/nopes",
        "/apis/apps/v1/deployments/x",
        "/api/v1/namespaces/default/pods/p/nope",
        "/nothing",
        "/apis/apps/v1/namespaces/default/deployments/a/b/c",
    ):
        response = requests.get(emulator.url + path, timeout=5)
        assert response.status_code == 404, path
        assert response.json()["reason"] == "NotFound"


def test_applied_crd_is_served_at_once_with_its_names(emulator: EmulatorServer) -> None:
    emulator.apply_crd(WIDGET_CRD)
    groups = {g["name"]: g for g in get(emulator, "/apis")["groups"]}
    assert groups[GROUP]["preferredVersion"]["version"] == "v1"
    assert [v["version"] for v in groups[GROUP]["versions"]] == ["v1", "v1beta1"]
    widgets = resources(emulator, f"{GROUP}/v1")
    assert widgets["widgets"] | {"storageVersionHash": ""} == {
        "name": "widgets",
        "singularName": "widget",
        "namespaced": True,
        "kind": "Widget",
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        "shortNames": ["wg", "wgt"],
        "categories": ["gizmos"],
        "storageVersionHash": "",
    }
    assert "widgets/status" in widgets
    assert "widgets" in resources(emulator, f"{GROUP}/v1beta1")


def test_crd_status_reports_established(emulator: EmulatorServer, kube_api: Any) -> None:
    emulator.apply_crd(WIDGET_CRD)
    crd = client.ApiextensionsV1Api(kube_api).read_custom_resource_definition(f"widgets.{GROUP}")
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd.status.accepted_names.kind == "Widget"
    assert crd.status.stored_versions == ["v1"]


def test_crd_created_over_http_and_updated_and_unserved_version(emulator: EmulatorServer, kube_api: Any) -> None:
    ext = client.ApiextensionsV1Api(kube_api)
    ext.create_custom_resource_definition(copy.deepcopy(WIDGET_CRD))
    current = ext.read_custom_resource_definition(f"widgets.{GROUP}")
    body = kube_api.sanitize_for_serialization(current)
    body["spec"]["versions"][1]["served"] = False
    ext.replace_custom_resource_definition(f"widgets.{GROUP}", body)
    versions = [v["version"] for v in {g["name"]: g for g in get(emulator, "/apis")["groups"]}[GROUP]["versions"]]
    assert versions == ["v1"]
    assert requests.get(f"{emulator.url}/apis/{GROUP}/v1beta1", timeout=5).status_code == 404


def test_deleting_the_crd_stops_serving_and_removes_instances(emulator: EmulatorServer, kube_api: Any) -> None:
    emulator.apply_crd(WIDGET_CRD)
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    client.ApiextensionsV1Api(kube_api).delete_custom_resource_definition(f"widgets.{GROUP}")
    assert GROUP not in {g["name"] for g in get(emulator, "/apis")["groups"]}
    with pytest.raises(ApiException) as caught:
        custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")
    assert caught.value.status == 404
    emulator.apply_crd(WIDGET_CRD)
    assert custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")["items"] == []


def test_invalid_crd_is_rejected(emulator: EmulatorServer) -> None:
    bad = copy.deepcopy(WIDGET_CRD)
    bad["metadata"]["name"] = "wrong.example.dev"
    for version in bad["spec"]["versions"]:
        version["storage"] = True
    with pytest.raises(Exception, match="is invalid") as caught:
        emulator.apply_crd(bad)
    assert "must have exactly one version marked as storage version" in str(caught.value)


def test_version_priority_orders_like_kubernetes() -> None:
    names = ["v1alpha1", "v2", "foo", "v1beta2", "v1", "v1beta1", "v11alpha2"]
    assert sorted(names, key=version_priority) == [
        "v2",
        "v1",
        "v1beta2",
        "v1beta1",
        "v11alpha2",
        "v1alpha1",
        "foo",
    ]


def test_openapi_v3_index_and_crd_document(emulator: EmulatorServer) -> None:
    emulator.apply_crd(WIDGET_CRD)
    index = get(emulator, "/openapi/v3")["paths"]
    assert {"api/v1", "apis/apps/v1", f"apis/{GROUP}/v1"} <= set(index)
    doc = get(emulator, index[f"apis/{GROUP}/v1"]["serverRelativeURL"])
    schema = doc["components"]["schemas"]["dev.example.v1.Widget"]
    assert schema["x-kubernetes-group-version-kind"] == [{"group": GROUP, "version": "v1", "kind": "Widget"}]
    assert schema["properties"]["spec"]["properties"]["app"]["description"] == "The application name."
    patch = doc["paths"][f"/apis/{GROUP}/v1/namespaces/{{namespace}}/widgets/{{name}}"]["patch"]
    assert {
        "name": "fieldValidation",
        "in": "query",
        "schema": {"type": "string", "uniqueItems": True},
    } in patch["parameters"]
    core = get(emulator, "/openapi/v3/api/v1")
    assert core["components"]["schemas"] == {}
    assert "/api/v1/namespaces/{name}/status" in core["paths"]
    assert requests.get(emulator.url + "/openapi/v2", timeout=5).status_code == 404
    assert requests.get(emulator.url + "/openapi/v3/apis/nope/v1", timeout=5).status_code == 404


def test_openapi_hash_changes_with_the_schema(emulator: EmulatorServer) -> None:
    emulator.apply_crd(WIDGET_CRD)
    before = get(emulator, "/openapi/v3")["paths"][f"apis/{GROUP}/v1"]["serverRelativeURL"]
    changed = copy.deepcopy(WIDGET_CRD)
    changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = "changed"
    emulator.apply_crd(changed)
    after = get(emulator, "/openapi/v3")["paths"][f"apis/{GROUP}/v1"]["serverRelativeURL"]
    assert before != after


def test_health_endpoints(emulator: EmulatorServer) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        assert requests.get(emulator.url + path, timeout=5).text == "ok"
