"""Server-side printing (`as=Table`), JSONPath evaluation and human-readable ages.

Tables are requested with kubectl's Accept header; JSONPath and ages are tested directly.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from controller.devkit.emulator import EmulatorServer
from controller.devkit.emulator.jsonpath import JsonPathError, compile_path, evaluate
from controller.devkit.emulator.objectmeta import human_duration, rfc3339_age
from tests.emulator.samples import GROUP, widget

TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
DOC = {
    "spec": {"app": "web", "list": [{"n": 1}, {"n": 2}], "labels": {"a.b/c": "x"}, "flag": True},
    "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Done", "status": "False"}]},
}


def table(server: EmulatorServer, path: str, **params: str) -> dict[str, Any]:
    response = requests.get(server.url + path, headers={"Accept": TABLE}, params=params, timeout=5)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    assert result["kind"] == "Table"
    assert result["apiVersion"] == "meta.k8s.io/v1"
    return result


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".spec.app", ["web"]),
        ("{.spec.app}", ["web"]),
        ("$.spec.app", ["web"]),
        ("spec.app", ["web"]),
        (".spec.list[0].n", [1]),
        (".spec.list[-1].n", [2]),
        (".spec.list[*].n", [1, 2]),
        (".spec.list[0:1].n", [1]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[?(@.type!='Ready')].type", ["Done"]),
        (".spec.list[?(@.n>1)].n", [2]),
        (".spec.list[?(@.n<=1)].n", [1]),
        (".spec.list[?(@.n >= 2)].n", [2]),
        (".spec.list[?(@.n<2)].n", [1]),
        (".spec.list[?(@.n)].n", [1, 2]),
        (".spec.list[?(@.n>'a')].n", []),
        (".spec.labels['a.b/c']", ["x"]),
        (r".spec.labels.a\.b/c", ["x"]),
        (".spec.missing", []),
        (".spec.flag", [True]),
        (".spec.*", ["web", [{"n": 1}, {"n": 2}], {"a.b/c": "x"}, True]),
        (".spec.list[9].n", []),
        (".spec[*].a", []),
        (".spec.app[0]", []),
        (".spec.labels[?(@=='x')]", ["x"]),
    ],
)
def test_jsonpath(path: str, expected: list[Any]) -> None:
    assert evaluate(path, DOC) == expected
    assert evaluate(compile_path(path), DOC) == expected


@pytest.mark.parametrize("path", [".a[", ".a[?(@.b ~ 1)]", ".a[x]", ".a[?(@.b==nope)]"])
def test_jsonpath_errors(path: str) -> None:
    with pytest.raises(JsonPathError):
        compile_path(path)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (185, "3m5s"),
        (900, "15m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 120, "3h2m"),
        (10 * 3600, "10h"),
        (3 * 86400, "3d"),
        (3 * 86400 + 3600, "3d1h"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400, "3y"),
        (3 * 365 * 86400 + 86400 * 5, "3y5d"),
        (10 * 365 * 86400, "10y"),
    ],
)
def test_human_durations(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_ages_of_timestamps() -> None:
    assert rfc3339_age("2000-01-01T00:00:00Z").endswith("y")
    assert rfc3339_age("nonsense") == "<invalid>"
    assert rfc3339_age(None) == "<unknown>"


def test_custom_resource_table_uses_printer_columns(server: EmulatorServer) -> None:
    path = f"/apis/{GROUP}/v1/namespaces/default/widgets"
    requests.post(server.url + path, json=widget("w", app="web", maxRing=3), timeout=5).raise_for_status()
    requests.patch(
        f"{server.url}{path}/w/status",
        timeout=5,
        json={"status": {"phase": "Ready", "conditions": [{"type": "Ready", "status": "True"}]}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).raise_for_status()
    result = table(server, path)
    columns = [(c["name"], c["type"], c["priority"]) for c in result["columnDefinitions"]]
    assert columns == [
        ("Name", "string", 0),
        ("App", "string", 0),
        ("Ring", "integer", 0),
        ("Ready", "string", 0),
        ("Phase", "string", 1),
        ("Age", "date", 0),
    ]
    (row,) = result["rows"]
    assert row["cells"][:5] == ["w", "web", 3, "True", "Ready"]
    assert row["cells"][5].endswith("s")
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["name"] == "w"
    assert result["metadata"]["resourceVersion"]
    full = table(server, path, includeObject="Object")["rows"][0]["object"]
    assert full["spec"]["app"] == "web"
    assert "object" not in table(server, path, includeObject="None")["rows"][0]
    one = table(server, f"{path}/w")
    assert [r["cells"][0] for r in one["rows"]] == ["w"]


def test_missing_column_values_are_null(server: EmulatorServer) -> None:
    path = f"/apis/{GROUP}/v1/namespaces/default/widgets"
    requests.post(server.url + path, json=widget("w"), timeout=5).raise_for_status()
    assert table(server, path)["rows"][0]["cells"][3:5] == [None, None]


def test_crd_without_columns_gets_name_and_age(server: EmulatorServer) -> None:
    body = {"apiVersion": f"{GROUP}/v1", "kind": "Gear", "metadata": {"name": "g"}, "spec": {}}
    requests.post(f"{server.url}/apis/{GROUP}/v1/gears", json=body, timeout=5).raise_for_status()
    result = table(server, f"/apis/{GROUP}/v1/gears")
    assert [c["name"] for c in result["columnDefinitions"]] == ["Name", "Age"]


def test_builtin_tables(server: EmulatorServer) -> None:
    post = [
        ("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "cm"}, "data": {"a": "1", "b": "2"}}),
        ("/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}, "data": {"a": "MQ=="}}),
        (
            "/api/v1/namespaces/default/services",
            {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}},
        ),
        (
            "/api/v1/namespaces/default/pods",
            {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        ),
        (
            "/apis/apps/v1/namespaces/default/deployments",
            {
                "metadata": {"name": "d"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {
                        "metadata": {"labels": {"a": "b"}},
                        "spec": {"containers": [{"name": "c", "image": "i:1"}]},
                    },
                },
            },
        ),
        (
            "/api/v1/namespaces/default/events",
            {
                "metadata": {"name": "e"},
                "type": "Normal",
                "reason": "Made",
                "message": "hi",
                "involvedObject": {"kind": "Pod", "name": "p"},
            },
        ),
        (
            "/apis/coordination.k8s.io/v1/namespaces/default/leases",
            {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}},
        ),
        ("/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "sa"}}),
    ]
    for path, body in post:
        requests.post(server.url + path, json=body, timeout=5).raise_for_status()
    rows = {path.rsplit("/", 1)[-1]: table(server, path)["rows"][0]["cells"] for path, _ in post}
    assert rows["configmaps"][:2] == ["cm", 2]
    assert rows["secrets"][:3] == ["s", "Opaque", 1]
    assert rows["services"][1:5] == ["ClusterIP", rows["services"][2], "<none>", "80/TCP"]
    assert rows["services"][-1] == "a=b"
    assert rows["pods"][:4] == ["p", "0/1", "Pending", "0"]
    assert rows["deployments"][:4] == ["d", "0/2", 0, 0]
    assert rows["deployments"][5:] == ["c", "i:1", "a=b"]
    assert rows["events"][1:] == ["Normal", "Made", "pod/p", "hi", "e"]
    assert rows["leases"][:2] == ["l", "me"]
    assert rows["serviceaccounts"][:2] == ["sa", 0]
    namespaces = table(server, "/api/v1/namespaces")
    assert [c["name"] for c in namespaces["columnDefinitions"]] == ["Name", "Status", "Age"]
    crds = table(server, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    assert crds["rows"][0]["cells"][1].endswith("Z")


def test_partial_object_metadata(server: EmulatorServer) -> None:
    path = f"/apis/{GROUP}/v1/namespaces/default/widgets"
    requests.post(server.url + path, json=widget("w"), timeout=5).raise_for_status()
    accept = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
    listing = requests.get(server.url + path, headers={"Accept": accept}, timeout=5).json()
    assert listing["kind"] == "PartialObjectMetadataList"
    assert "spec" not in listing["items"][0]
    accept = "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
    one = requests.get(f"{server.url}{path}/w", headers={"Accept": accept}, timeout=5).json()
    assert one["kind"] == "PartialObjectMetadata"
    assert one["metadata"]["name"] == "w"
