"""Merge, JSON and strategic merge patches and server-side apply: the functions and over HTTP.

Pure-function tests of `patching.py`, then the same formats over HTTP and the official client.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client.rest import ApiException

from controller.devkit.emulator import EmulatorServer
from controller.devkit.emulator.patching import PatchError, json_patch, merge_patch, strategic_merge
from tests.emulator.samples import GROUP, widget

WIDGETS = f"/apis/{GROUP}/v1/namespaces/default/widgets"


def patch(server: EmulatorServer, path: str, body: Any, media: str, **params: str) -> requests.Response:
    data = body if isinstance(body, str) else json.dumps(body)
    return requests.patch(server.url + path, data=data, params=params, headers={"Content-Type": media}, timeout=5)


def test_merge_patch_semantics() -> None:
    original = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge_patch(original, {"a": {"b": None, "c": [3]}, "e": {"f": 1}}) == {
        "a": {"c": [3]},
        "d": 1,
        "e": {"f": 1},
    }
    assert original == {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge_patch(original, [1]) == [1]


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    result = json_patch(
        doc,
        [
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "add", "path": "/a/b/0", "value": 0},
            {"op": "remove", "path": "/c"},
            {"op": "replace", "path": "/a/b/1", "value": 9},
            {"op": "copy", "from": "/a/b", "path": "/d"},
            {"op": "move", "from": "/d", "path": "/e"},
            {"op": "test", "path": "/e", "value": [0, 9, 2, 3]},
            {"op": "add", "path": "/k~1j", "value": 1},
        ],
    )
    assert result == {"a": {"b": [0, 9, 2, 3]}, "e": [0, 9, 2, 3], "k/j": 1}
    assert doc == {"a": {"b": [1, 2]}, "c": "x"}
    assert json_patch(doc, [{"op": "replace", "path": "", "value": 5}]) == 5


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([{"op": "test", "path": "/c", "value": "y"}], "testing value /c failed"),
        ([{"op": "test", "path": "/zz", "value": "y"}], "testing value /zz failed"),
        ([{"op": "test", "path": "/n", "value": True}], "testing value /n failed"),
        ([{"op": "remove", "path": "/zz"}], "remove operation does not apply"),
        ([{"op": "replace", "path": "/zz", "value": 1}], "replace operation does not apply"),
        ([{"op": "add", "path": "/a/b/9", "value": 1}], "index out of bounds"),
        ([{"op": "add", "path": "/c/x", "value": 1}], "add operation does not apply"),
        ([{"op": "remove", "path": ""}], "cannot remove the whole document"),
        ([{"op": "jump", "path": "/c"}], "Unexpected kind"),
        ([{"op": "add", "path": "/c"}], "missing value"),
        ([{"path": "/c"}], "invalid JSON patch operation"),
        ([{"op": "add", "path": "c", "value": 1}], "must start with"),
        ({"op": "add"}, "cannot unmarshal"),
    ],
)
def test_json_patch_failures(ops: Any, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        json_patch({"a": {"b": [1]}, "c": "x", "n": 1}, ops)


def test_strategic_merge_lists_by_merge_key() -> None:
    pod = {
        "containers": [
            {
                "name": "a",
                "image": "x:1",
                "env": [{"name": "E", "value": "1"}],
                "ports": [{"containerPort": 80}],
            },
            {"name": "b", "image": "y:1"},
        ],
        "volumes": [{"name": "v1"}],
        "args": ["a"],
    }
    patched = strategic_merge(
        pod,
        {
            "containers": [
                {
                    "name": "a",
                    "image": "x:2",
                    "env": [{"name": "F", "value": "2"}],
                    "ports": [{"containerPort": 80, "name": "http"}],
                },
                {"name": "c", "image": "z:1"},
                {"name": "b", "$patch": "delete"},
            ],
            "volumes": [{"$patch": "replace"}, {"name": "v2"}],
            "args": ["b"],
        },
    )
    assert patched == {
        "containers": [
            {
                "name": "a",
                "image": "x:2",
                "env": [{"name": "E", "value": "1"}, {"name": "F", "value": "2"}],
                "ports": [{"containerPort": 80, "name": "http"}],
            },
            {"name": "c", "image": "z:1"},
        ],
        "volumes": [{"name": "v2"}],
        "args": ["b"],
    }


def test_strategic_merge_directives() -> None:
    obj = {
        "metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}},
        "spec": {
            "template": {"a": 1},
            "strategy": {"type": "Recreate", "rollingUpdate": {"x": 1}},
            "ports": [{"port": 80, "name": "a"}, {"port": 81}],
        },
    }
    patched = strategic_merge(
        obj,
        {
            "metadata": {
                "finalizers": ["c"],
                "$deleteFromPrimitiveList/finalizers": ["a"],
                "labels": {"x": None},
            },
            "spec": {
                "template": {"$patch": "delete"},
                "strategy": {"$retainKeys": ["type"], "type": "RollingUpdate"},
                "$setElementOrder/ports": [{"port": 81}, {"port": 80}],
                "ports": [{"port": 80, "name": "b"}],
            },
        },
    )
    assert patched == {
        "metadata": {"finalizers": ["b", "c"], "labels": {"y": "2"}},
        "spec": {"strategy": {"type": "RollingUpdate"}, "ports": [{"port": 81}, {"port": 80, "name": "b"}]},
    }
    assert strategic_merge({"a": {"b": 1}}, {"a": {"$patch": "replace", "c": 2}}) == {"a": {"c": 2}}
    assert strategic_merge({"f": ["x"]}, {"$setElementOrder/f": ["y", "x"], "f": ["y"]}) == {"f": ["y"]}


def test_merge_and_json_patch_over_http(server: EmulatorServer) -> None:
    requests.post(server.url + WIDGETS, json=widget("w"), timeout=5).raise_for_status()
    merged = patch(server, f"{WIDGETS}/w", {"spec": {"maxRing": 3}}, "application/merge-patch+json")
    assert merged.status_code == 200
    assert merged.json()["spec"]["maxRing"] == 3
    rv = merged.json()["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.dev/f"]},
    ]
    assert patch(server, f"{WIDGETS}/w", ops, "application/json-patch+json").status_code == 200
    stale = patch(server, f"{WIDGETS}/w", ops, "application/json-patch+json")
    assert stale.status_code == 422
    assert stale.json()["reason"] == "Invalid"
    assert "testing value /metadata/resourceVersion failed" in stale.json()["message"]


def test_stale_resource_version_in_a_patch_body_conflicts(server: EmulatorServer) -> None:
    created = requests.post(server.url + WIDGETS, json=widget("w"), timeout=5).json()
    rv = created["metadata"]["resourceVersion"]
    assert patch(server, f"{WIDGETS}/w", {"spec": {"maxRing": 2}}, "application/merge-patch+json").ok
    stale = patch(
        server,
        f"{WIDGETS}/w",
        {"metadata": {"resourceVersion": rv}, "spec": {"maxRing": 3}},
        "application/merge-patch+json",
    )
    assert stale.status_code == 409
    assert stale.json()["reason"] == "Conflict"


def test_patch_errors(server: EmulatorServer) -> None:
    requests.post(server.url + WIDGETS, json=widget("w"), timeout=5).raise_for_status()
    smp = patch(server, f"{WIDGETS}/w", {"spec": {"maxRing": 2}}, "application/strategic-merge-patch+json")
    assert smp.status_code == 415
    assert smp.json()["reason"] == "UnsupportedMediaType"
    assert patch(server, f"{WIDGETS}/w", {}, "text/plain").status_code == 415
    assert patch(server, f"{WIDGETS}/nope", {}, "application/merge-patch+json").status_code == 404
    assert patch(server, f"{WIDGETS}/w", "{not json", "application/merge-patch+json").status_code == 400
    renamed = patch(server, f"{WIDGETS}/w", {"metadata": {"name": "x"}}, "application/merge-patch+json")
    assert renamed.status_code == 400
    broken = patch(server, f"{WIDGETS}/w", {"metadata": None}, "application/merge-patch+json")
    assert broken.status_code == 422


def test_strategic_merge_patch_of_a_deployment(server: EmulatorServer, kube_api: Any) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
                            {"name": "sidecar", "image": "side:1"},
                        ]
                    },
                },
            },
        },
    )
    patched = apps.patch_namespaced_deployment(
        "web",
        "default",
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}]}]}
                }
            }
        },
    )
    containers = patched.spec.template.spec.containers
    assert [(c.name, c.image) for c in containers] == [("app", "app:2"), ("sidecar", "side:1")]
    assert [e.name for e in containers[0].env] == ["A", "B"]
    assert patched.metadata.generation == 2


def test_server_side_apply_creates_then_merges(server: EmulatorServer) -> None:
    body = "apiVersion: example.dev/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  app: web\n"
    created = patch(server, f"{WIDGETS}/w", body, "application/apply-patch+yaml", fieldManager="me")
    assert created.status_code == 201
    assert created.json()["spec"] == {"app": "web", "maxRing": 1, "action": "Deploy"}
    again = patch(
        server,
        f"{WIDGETS}/w",
        body.replace("app: web", "app: api"),
        "application/apply-patch+yaml",
        fieldManager="me",
    )
    assert again.status_code == 200
    assert again.json()["spec"]["app"] == "api"
    missing = patch(server, f"{WIDGETS}/w", body, "application/apply-patch+yaml")
    assert missing.status_code == 400
    assert "fieldManager" in missing.json()["message"]
    other = patch(server, f"{WIDGETS}/x", body, "application/apply-patch+yaml", fieldManager="me")
    assert other.status_code == 400


def test_server_side_apply_of_a_builtin(server: EmulatorServer) -> None:
    path = "/api/v1/namespaces/default/configmaps/cm"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "1"}}
    assert patch(server, path, body, "application/apply-patch+yaml", fieldManager="me").status_code == 201
    body["data"] = {"b": "2"}
    merged = patch(server, path, body, "application/apply-patch+yaml", fieldManager="me").json()
    assert merged["data"] == {"a": "1", "b": "2"}


def test_patch_by_the_official_client(custom: Any) -> None:
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    patched = custom.patch_namespaced_custom_object(
        GROUP, "v1", "default", "widgets", "w", {"metadata": {"labels": {"a": "b"}}}
    )
    assert patched["metadata"]["labels"] == {"a": "b"}
    assert patched["metadata"]["generation"] == 1
    with pytest.raises(ApiException) as caught:
        custom.patch_namespaced_custom_object(
            GROUP, "v1", "default", "widgets", "w", [{"op": "test", "path": "/spec/app", "value": "nope"}]
        )
    assert caught.value.status == 422
