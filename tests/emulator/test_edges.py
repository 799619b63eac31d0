"""Edge cases of the emulator's building blocks: metadata rules, built-ins, protobuf, CR scale, CLI.

Mostly direct calls into the modules plus a few requests; the kubectl and Kopf suites cover the rest.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client

from controller.devkit.emulator import EmulatorServer
from controller.devkit.emulator.__main__ import parse_args, serve
from controller.devkit.emulator.apierrors import go_value
from controller.devkit.emulator.objectmeta import validate_meta, validate_name
from controller.devkit.emulator.patching import json_equal, json_patch, strategic_merge
from controller.devkit.emulator.protobuf import MAGIC, decode_protobuf
from controller.devkit.emulator.server import Snapshots
from controller.devkit.emulator.tables import columns_for
from tests.emulator.samples import GEAR_CRD, GROUP, WIDGET_CRD, widget


def test_go_value_formatting() -> None:
    assert [go_value(v) for v in (None, True, 7.0, 7.5, "a", [1])] == [
        "null",
        "true",
        "7",
        "7.5",
        '"a"',
        "[1]",
    ]


def test_metadata_rules() -> None:
    assert "must be no more than 253 characters" in validate_name("a" * 254)[0].detail
    assert validate_name(5)[0].reason == "FieldValueRequired"
    errors = validate_meta({"labels": {"Bad_/x": "v", "ok": 5}, "annotations": [1], "finalizers": [""]})
    details = sorted(e.detail[:20] for e in errors)
    assert len(errors) == 4
    assert any(d.startswith("prefix part") for d in details)
    assert validate_meta({"labels": {"-x": "v"}})[0].detail.startswith("name part must consist")


def test_builtin_validation_errors(server: EmulatorServer, kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    pod = requests.post(
        f"{server.url}/api/v1/namespaces/default/pods",
        timeout=5,
        json={"metadata": {"name": "p"}, "spec": {}},
    )
    assert "spec.containers: Required value" in pod.json()["message"]
    deployment = requests.post(
        f"{server.url}/apis/apps/v1/namespaces/default/deployments",
        timeout=5,
        json={
            "metadata": {"name": "d"},
            "spec": {"replicas": -1, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
        },
    )
    fields = [c["field"] for c in deployment.json()["details"]["causes"]]
    assert fields == ["spec.selector", "spec.replicas"]
    svc = core.create_namespaced_service("default", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 1}]}})
    updated = core.replace_namespaced_service(
        "s", "default", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 2}]}}
    )
    assert updated.spec.cluster_ip == svc.spec.cluster_ip
    with pytest.raises(Exception, match="is invalid") as crd_error:
        server.apply_crd(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "x"},
                "spec": {"names": {}},
            }
        )
    for field in ("spec.group", "spec.scope", "spec.names.plural", "spec.names.kind", "spec.versions"):
        assert f"{field}: Required value" in str(crd_error.value)


def test_api_version_of_another_group_is_rejected(server: EmulatorServer) -> None:
    body = widget("w")
    body["apiVersion"] = "other.dev/v1"
    response = requests.post(f"{server.url}/apis/{GROUP}/v1/namespaces/default/widgets", json=body, timeout=5)
    assert response.status_code == 400
    assert "does not match the expected API version" in response.json()["message"]


def test_protobuf_wire_details() -> None:
    def field(number: int, wire: int, payload: bytes) -> bytes:
        return bytes([number << 3 | wire]) + payload

    def length(number: int, data: bytes) -> bytes:
        return field(number, 2, bytes([len(data)]) + data)

    meta = length(1, b"ns1") + field(7, 1, b"\x01" * 8) + field(10, 5, b"\x01" * 4)
    namespace = length(1, meta) + length(2, length(1, b"kubernetes") + length(1, b"extra"))
    envelope = MAGIC + length(1, length(1, b"v1") + length(2, b"Namespace")) + length(2, namespace)
    assert decode_protobuf(envelope) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "ns1"},
        "spec": {"finalizers": ["kubernetes", "extra"]},
    }
    with pytest.raises(ValueError, match="truncated"):
        decode_protobuf(MAGIC + b"\x08")
    with pytest.raises(ValueError, match="wire type"):
        decode_protobuf(MAGIC + b"\x0b")
    unknown = MAGIC + length(1, length(1, b"v1") + length(2, b"Binding"))
    with pytest.raises(Exception, match="unknown format"):
        decode_protobuf(unknown)


def test_patch_function_corners() -> None:
    assert json_patch([1, 2, 3], [{"op": "remove", "path": "/1"}]) == [1, 3]
    assert json_equal({"a": [1, {"b": True}]}, {"a": [1, {"b": True}]})
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal("1", 1)
    assert strategic_merge({"a": 1}, 5) == 5
    merged = strategic_merge({"volumes": [{"name": "a"}]}, {"volumes": ["raw", {"name": "b"}]})
    assert merged == {"volumes": [{"name": "a"}, "raw", {"name": "b"}]}


def test_custom_column_types(server: EmulatorServer) -> None:
    crd = copy.deepcopy(GEAR_CRD)
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
        {"name": "On", "type": "boolean", "jsonPath": ".spec.on"},
        {"name": "Parts", "type": "string", "jsonPath": ".spec.parts"},
        {"name": "Flag", "type": "string", "jsonPath": ".spec.on"},
        {"name": "Count", "type": "string", "jsonPath": ".spec.ratio"},
        {"name": "Broken", "type": "string", "jsonPath": ".spec[oops]"},
        {"name": "Bad", "type": "integer", "jsonPath": ".spec.on"},
    ]
    server.apply_crd(crd)
    rt = server.cluster.registry.lookup(GROUP, "v1", "gears")
    assert rt is not None
    obj = {"metadata": {"name": "g"}, "spec": {"ratio": 1.5, "on": True, "parts": {"a": [1]}}}
    cells = [cell(obj) for _, cell in columns_for(rt)]
    assert cells == ["g", 1.5, True, '{"a":[1]}', "true", "1.5", None, None]


def test_custom_resource_scale_subresource(server: EmulatorServer, kube_api: Any) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    crd["spec"]["versions"][0]["subresources"]["scale"] = {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.observedGeneration",
        "labelSelectorPath": ".spec.app",
    }
    server.apply_crd(crd)
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w", app="web", replicas=2))
    scale = custom.get_namespaced_custom_object_scale(GROUP, "v1", "default", "widgets", "w")
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 0, "selector": "web"}
    custom.patch_namespaced_custom_object_scale(GROUP, "v1", "default", "widgets", "w", {"spec": {"replicas": 5}})
    assert custom.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")["spec"]["replicas"] == 5
    url = f"{server.url}/apis/{GROUP}/v1/namespaces/default/widgets/w/scale"
    assert requests.put(url, json=[1], timeout=5).status_code == 400
    patched = requests.patch(
        url,
        json=[{"op": "replace", "path": "/spec/replicas", "value": 3}],
        timeout=5,
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert patched.json()["spec"]["replicas"] == 3


def test_dry_run_updates_and_deletes(custom: Any) -> None:
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    patched = custom.patch_namespaced_custom_object(
        GROUP, "v1", "default", "widgets", "w", {"spec": {"maxRing": 4}}, dry_run="All"
    )
    assert patched["spec"]["maxRing"] == 4
    custom.delete_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w", dry_run="All")
    assert custom.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")["spec"]["maxRing"] == 1


def test_removing_the_crd_cleanup_finalizer_drops_leftovers(server: EmulatorServer, custom: Any, kube_api: Any) -> None:
    ext = client.ApiextensionsV1Api(kube_api)
    held = widget("w")
    held["metadata"]["finalizers"] = ["example.dev/hold"]
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", held)
    ext.delete_custom_resource_definition(f"widgets.{GROUP}")
    ext.patch_custom_resource_definition(f"widgets.{GROUP}", {"metadata": {"finalizers": None}})
    assert server.cluster.store.items((GROUP, "widgets")) == []


def test_storage_version_falls_back_when_not_served(emulator: EmulatorServer) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    crd["spec"]["versions"][0]["served"] = False
    emulator.apply_crd(crd)
    storage = emulator.cluster.rt_for_key((GROUP, "widgets"))
    assert storage is not None
    assert storage.version == "v1beta1"


def test_failed_snapshot_write_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snapshots = Snapshots(EmulatorServer().cluster, tmp_path / "state.json")

    def refuse(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        snapshots.save()
    assert list(tmp_path.iterdir()) == []


async def test_serve_runs_until_stopped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse_args(["--kubeconfig", str(tmp_path / "kc.yaml"), "--state", str(tmp_path / "s.json")])
    stop = asyncio.Event()
    task = asyncio.create_task(serve(args, stop))
    for _ in range(200):
        if (tmp_path / "kc.yaml").exists():
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert capsys.readouterr().out.startswith("http://127.0.0.1:")
    assert (tmp_path / "s.json").exists()
