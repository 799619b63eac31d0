"""The real kubectl binary against the emulator: get, apply, create, replace, patch, delete, watch.

Each test gets its own emulator, kubeconfig and kubectl discovery cache (`tests.fixtures.kube`).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.devkit.emulator import EmulatorServer
from tests.emulator.samples import GROUP
from tests.fixtures.kube import KUBECTL, Kubectl

WIDGET = """apiVersion: example.dev/v1
kind: Widget
metadata:
  name: w1
  labels: {tier: web}
spec:
  app: web
  maxRing: 2
"""
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {a: b}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: app:1
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
"""

pytestmark = pytest.mark.usefixtures("server")


def lines(result: subprocess.CompletedProcess[str]) -> list[list[str]]:
    assert result.returncode == 0, result.stderr
    return [line.split() for line in result.stdout.strip().splitlines()]


def test_get_with_printer_columns_short_names_and_categories(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=WIDGET, check=True)
    kubectl(
        "apply",
        "-f",
        "-",
        input="apiVersion: example.dev/v1\nkind: Gear\nmetadata: {name: g1}\nspec: {}\n",
        check=True,
    )
    table = lines(kubectl("get", "widgets"))
    assert table[0] == ["NAME", "APP", "RING", "READY", "AGE"]
    assert table[1][:3] == ["w1", "web", "2"]
    assert table[1][3].endswith("s")
    assert lines(kubectl("get", "wg", "-o", "wide"))[0] == ["NAME", "APP", "RING", "READY", "PHASE", "AGE"]
    gizmos = kubectl("get", "gizmos", "-A")
    assert "widget.example.dev/w1" in gizmos.stdout
    assert "gear.example.dev/g1" in gizmos.stdout
    assert lines(kubectl("get", "wgt", "w1", "--no-headers", "-o", "custom-columns=N:.metadata.name")) == [["w1"]]
    assert lines(kubectl("get", "wg", "-l", "tier=web", "--show-labels"))[1][-1] == "tier=web"
    assert kubectl("get", "wg", "-l", "tier=db").stderr.strip() == "No resources found in default namespace."


def test_get_output_formats(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=WIDGET, check=True)
    as_yaml = yaml.safe_load(kubectl("get", "widget", "w1", "-o", "yaml", check=True).stdout)
    assert as_yaml["spec"] == {"app": "web", "maxRing": 2, "action": "Deploy"}
    annotation = as_yaml["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert json.loads(annotation)["spec"] == {"app": "web", "maxRing": 2}
    as_json = json.loads(kubectl("get", "wg", "-o", "json", check=True).stdout)
    assert as_json["kind"] == "List"
    assert as_json["items"][0]["metadata"]["name"] == "w1"
    jsonpath = kubectl("get", "wg", "w1", "-o", "jsonpath={.spec.app}/{.metadata.generation}", check=True)
    assert jsonpath.stdout == "web/1"
    assert kubectl("get", "wg", "w1", "-o", "name", check=True).stdout.strip() == "widget.example.dev/w1"


def test_apply_configures_with_a_three_way_merge(kubectl: Kubectl, server: EmulatorServer) -> None:
    assert kubectl("apply", "-f", "-", input=WIDGET, check=True).stdout.strip() == "widget.example.dev/w1 created"
    changed = WIDGET.replace("maxRing: 2", "maxRing: 3").replace("  labels: {tier: web}\n", "")
    assert kubectl("apply", "-f", "-", input=changed, check=True).stdout.strip() == "widget.example.dev/w1 configured"
    assert kubectl("apply", "-f", "-", input=changed, check=True).stdout.strip() == "widget.example.dev/w1 unchanged"
    obj = json.loads(kubectl("get", "wg", "w1", "-o", "json", check=True).stdout)
    assert obj["spec"]["maxRing"] == 3
    assert "labels" not in obj["metadata"]
    assert obj["metadata"]["generation"] == 2
    patches = [r for r in server.requests if r.method == "PATCH"]
    assert patches[-1].content_type == "application/merge-patch+json"
    assert "fieldValidation=Strict" in patches[-1].query


def test_apply_of_a_deployment_uses_strategic_merge(kubectl: Kubectl, server: EmulatorServer) -> None:
    kubectl("apply", "-f", "-", input=DEPLOYMENT, check=True)
    changed = DEPLOYMENT.replace("app:1", "app:2").replace(', {name: B, value: "2"}', "")
    kubectl("apply", "-f", "-", input=changed, check=True)
    obj = json.loads(kubectl("get", "deploy", "web", "-o", "json", check=True).stdout)
    (container,) = obj["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "app:2"
    assert container["env"] == [{"name": "A", "value": "1"}]
    assert [r for r in server.requests if r.method == "PATCH"][
        -1
    ].content_type == "application/strategic-merge-patch+json"
    table = lines(kubectl("get", "deploy"))
    assert table[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1][:4] == ["web", "0/1", "0", "0"]


def test_apply_validates_unknown_fields_strictly(kubectl: Kubectl) -> None:
    bogus = WIDGET.replace("maxRing: 2", "maxRing: 2\n  bogus: 1")
    strict = kubectl("apply", "-f", "-", input=bogus)
    assert strict.returncode == 1
    assert 'strict decoding error: unknown field "spec.bogus"' in strict.stderr
    lenient = kubectl("apply", "--validate=false", "-f", "-", input=bogus)
    assert lenient.returncode == 0, lenient.stderr
    invalid = kubectl("apply", "-f", "-", input=WIDGET.replace("maxRing: 2", "maxRing: 7").replace("w1", "w2"))
    assert invalid.returncode == 1
    assert (
        'The Widget "w2" is invalid: spec.maxRing: Invalid value: 7: '
        "spec.maxRing in body should be less than "
        "or equal to 4" in invalid.stderr
    )


def test_server_side_apply(kubectl: Kubectl) -> None:
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", "-", input=WIDGET, check=True).stdout
    kubectl("apply", "--server-side", "-f", "-", input=WIDGET.replace("web", "api"), check=True)
    assert kubectl("get", "wg", "w1", "-o", "jsonpath={.spec.app}", check=True).stdout == "api"


def test_create_replace_and_conflicts(kubectl: Kubectl) -> None:
    assert kubectl("create", "-f", "-", input=WIDGET, check=True).stdout.strip() == "widget.example.dev/w1 created"
    again = kubectl("create", "-f", "-", input=WIDGET)
    assert again.returncode == 1
    assert "AlreadyExists" in again.stderr
    current = kubectl("get", "wg", "w1", "-o", "yaml", check=True).stdout
    replaced = kubectl("replace", "-f", "-", input=current.replace("maxRing: 2", "maxRing: 4"), check=True)
    assert replaced.stdout.strip() == "widget.example.dev/w1 replaced"
    stale = kubectl("replace", "-f", "-", input=current.replace("maxRing: 2", "maxRing: 1"))
    assert stale.returncode == 1
    assert "Error from server (Conflict)" in stale.stderr
    fresh = kubectl("replace", "-f", "-", input=WIDGET.replace("maxRing: 2", "maxRing: 0"), check=True)
    assert fresh.returncode == 0


def test_patch_types_and_status_subresource(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=WIDGET, check=True)
    kubectl("patch", "wg", "w1", "--type", "merge", "-p", '{"spec":{"maxRing":3}}', check=True)
    kubectl(
        "patch",
        "wg",
        "w1",
        "--type",
        "json",
        "-p",
        '[{"op":"replace","path":"/spec/app","value":"api"}]',
        check=True,
    )
    strategic = kubectl("patch", "wg", "w1", "--type", "strategic", "-p", '{"spec":{"maxRing":1}}')
    assert strategic.returncode == 1
    assert "application/strategic-merge-patch+json is not supported" in strategic.stderr
    status = '{"status":{"phase":"Ready","conditions":[{"type":"Ready","status":"True"}]}}'
    kubectl("patch", "wg", "w1", "--subresource=status", "--type", "merge", "-p", status, check=True)
    table = lines(kubectl("get", "wg", "-o", "wide"))
    assert table[1][:5] == ["w1", "api", "3", "True", "Ready"]
    kubectl("apply", "-f", "-", input=DEPLOYMENT, check=True)
    kubectl(
        "patch",
        "deploy",
        "web",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"app:9"}]}}}}',
        check=True,
    )
    env = kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].env[*].name}")
    assert env.stdout == "A B"


def test_label_annotate_scale_describe_wait(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=WIDGET, check=True)
    kubectl("label", "wg", "w1", "team=x", check=True)
    kubectl("annotate", "wg", "w1", "note=y", check=True)
    meta = json.loads(kubectl("get", "wg", "w1", "-o", "jsonpath={.metadata}", check=True).stdout)
    assert meta["labels"]["team"] == "x"
    assert meta["annotations"]["note"] == "y"
    kubectl("apply", "-f", "-", input=DEPLOYMENT, check=True)
    assert kubectl("scale", "deploy", "web", "--replicas=3", check=True).stdout.strip() == "deployment.apps/web scaled"
    assert kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "3"
    described = kubectl("describe", "wg", "w1", check=True).stdout
    assert "Name:         w1" in described
    assert "Events:" in described
    kubectl(
        "patch",
        "wg",
        "w1",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}',
        check=True,
    )
    waited = kubectl("wait", "--for=condition=Ready", "wg/w1", "--timeout=10s", check=True)
    assert waited.stdout.strip() == "widget.example.dev/w1 condition met"


def test_delete_waits_for_finalizers(kubectl: Kubectl) -> None:
    held = WIDGET.replace("  labels: {tier: web}\n", "  finalizers: [example.dev/hold]\n")
    kubectl("apply", "-f", "-", input=held, check=True)
    deleted = kubectl("delete", "wg", "w1", "--wait=false", check=True).stdout
    assert deleted.startswith('widget.example.dev "w1" deleted')  # newer kubectl adds "from default namespace"
    assert kubectl("get", "wg", "w1", "-o", "jsonpath={.metadata.deletionTimestamp}").stdout.endswith("Z")
    kubectl("patch", "wg", "w1", "--type", "merge", "-p", '{"metadata":{"finalizers":null}}', check=True)
    assert "NotFound" in kubectl("get", "wg", "w1").stderr
    kubectl("apply", "-f", "-", input=WIDGET, check=True)
    kubectl("delete", "-f", "-", input=WIDGET, check=True)
    assert "No resources found" in kubectl("get", "wg").stderr


def test_watch_with_event_types(kubectl: Kubectl, kubeconfig: Path, tmp_path: Path) -> None:
    kubectl("apply", "-f", "-", input=WIDGET, check=True)
    watcher = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(tmp_path / "watch"),
            "get",
            "wg",
            "-w",
            "--output-watch-events",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().split()[:2] == ["EVENT", "NAME"]
        assert watcher.stdout.readline().split()[:2] == ["ADDED", "w1"]
        kubectl("patch", "wg", "w1", "--type", "merge", "-p", '{"spec":{"maxRing":4}}', check=True)
        assert watcher.stdout.readline().split()[:4] == ["MODIFIED", "w1", "web", "4"]
        kubectl("delete", "wg", "w1", check=True)
        assert watcher.stdout.readline().split()[:2] == ["DELETED", "w1"]
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)


def test_api_resources_and_explain(kubectl: Kubectl) -> None:
    resources = kubectl("api-resources", check=True)
    assert resources.stderr == ""
    rows = {tuple(row[:2]) for row in lines(resources)}
    assert ("widgets", "wg,wgt") in rows
    assert ("deployments", "deploy") in rows
    assert ("gears", GROUP + "/v1") in rows
    explained = kubectl("explain", "widgets.spec", check=True).stdout
    assert "KIND:       Widget" in explained
    assert "What the widget wants." in explained
    assert "app\t<string> -required-" in explained
    assert "The application name." in explained
    recursive = kubectl("explain", "widget", "--recursive", check=True).stdout
    assert "maxRing\t<integer>" in recursive


def test_typed_create_commands_send_protobuf(kubectl: Kubectl, server: EmulatorServer) -> None:
    kubectl("create", "namespace", "team-a", check=True)
    kubectl("-n", "team-a", "create", "configmap", "cm", "--from-literal=k=v", check=True)
    kubectl("-n", "team-a", "create", "secret", "generic", "s", "--from-literal=pw=x", check=True)
    kubectl("-n", "team-a", "create", "serviceaccount", "sa", check=True)
    kubectl(
        "-n",
        "team-a",
        "create",
        "deployment",
        "d",
        "--image=nginx:1.25",
        "--replicas=2",
        "--port=80",
        check=True,
    )
    kubectl("-n", "team-a", "create", "service", "clusterip", "svc", "--tcp=80:8080", check=True)
    assert any(r.content_type == "application/vnd.kubernetes.protobuf" for r in server.requests)
    assert kubectl("get", "ns", "team-a", "-o", "jsonpath={.status.phase}").stdout == "Active"
    assert kubectl("-n", "team-a", "get", "cm", "cm", "-o", "jsonpath={.data.k}").stdout == "v"
    assert kubectl("-n", "team-a", "get", "secret", "s", "-o", "jsonpath={.data.pw}").stdout == "eA=="
    deployment = json.loads(kubectl("-n", "team-a", "get", "deploy", "d", "-o", "json", check=True).stdout)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80}]
    service = json.loads(kubectl("-n", "team-a", "get", "svc", "svc", "-o", "json", check=True).stdout)
    assert service["spec"]["ports"][0]["targetPort"] == 8080
    table = lines(kubectl("get", "ns"))
    assert table[-1][:2] == ["team-a", "Active"] or ["team-a", "Active"] in [r[:2] for r in table]
    kubectl("delete", "ns", "team-a", check=True)
    assert "NotFound" in kubectl("get", "ns", "team-a").stderr


def test_raw_version_and_all_category(kubectl: Kubectl) -> None:
    version = json.loads(kubectl("get", "--raw", "/version", check=True).stdout)
    assert version["minor"] == "32"
    assert "Server Version: v1.32.0" in kubectl("version", check=True).stdout
    kubectl("apply", "-f", "-", input=DEPLOYMENT, check=True)
    assert "deployment.apps/web" in kubectl("get", "all", check=True).stdout


def test_events_listing(kubectl: Kubectl, kube_api: Any) -> None:
    from kubernetes import client

    client.CoreV1Api(kube_api).create_namespaced_event(
        "default",
        {
            "metadata": {"name": "e1"},
            "type": "Warning",
            "reason": "Broken",
            "message": "it broke",
            "involvedObject": {"kind": "Widget", "name": "w1", "namespace": "default"},
            "lastTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    table = lines(kubectl("get", "events"))
    assert table[0] == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert table[1][1:] == ["Warning", "Broken", "widget/w1", "it", "broke"]
