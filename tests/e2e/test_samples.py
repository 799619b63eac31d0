"""Every sample in crds/samples applies with kubectl and is reconciled; bad objects are refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.devkit.identities import sample_author
from tests.fixtures.stack import Stack, wait_for

pytestmark = pytest.mark.e2e
SAMPLES = sorted((Path(__file__).resolve().parents[2] / "crds" / "samples").glob("*.yaml"))
NS = "samples-e2e"


@pytest.fixture(scope="module")
def namespace(stack: Stack) -> Iterator[str]:
    stack.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    )
    yield NS
    for task in stack.custom.list_namespaced_custom_object("ringpilot.dev", "v1alpha1", NS, "deploymenttasks")["items"]:
        stack.custom.patch_namespaced_custom_object(  # the sample rollouts leave the shared stack's apps free
            "ringpilot.dev", "v1alpha1", NS, "deploymenttasks", task["metadata"]["name"], {"spec": {"cancel": True}}
        )


def plural(doc: dict[str, Any]) -> str:
    return str(doc["kind"]).lower() + "s"


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_applies_and_reaches_its_first_condition(stack: Stack, namespace: str, path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    doc["metadata"]["namespace"] = namespace
    out = stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), user=sample_author(doc))
    assert "created" in out.stdout or "configured" in out.stdout

    def reconciled() -> dict[str, Any] | None:
        obj = stack.get(plural(doc), doc["metadata"]["name"], namespace)
        status = obj.get("status") or {}
        summary = [c for c in status.get("conditions", []) if c["type"] in ("Ready", "Succeeded")]
        if status.get("observedGeneration") == obj["metadata"]["generation"] and summary:
            return obj
        return None

    obj = wait_for(reconciled, 30, what=f"{doc['kind']} to be reconciled with a Ready or Succeeded condition")
    assert obj["metadata"]["labels"]["ringpilot.dev/correlation-id"]
    conds = {c["type"]: c for c in obj["status"]["conditions"]}
    invalid = conds.get("InvalidSpec", {"status": "False"})
    assert invalid["status"] == "False", f"sample {path.name} rejected: {invalid.get('message')}"
    assert all(c.get("reason") != "InvalidSpec" for c in conds.values()), conds


def test_kubectl_lists_every_ringpilot_object_with_its_columns(stack: Stack, namespace: str) -> None:
    for path in SAMPLES:
        doc = yaml.safe_load(path.read_text())
        doc["metadata"]["namespace"] = namespace
        stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), user=sample_author(doc))
    out = stack.kubectl("get", "ringpilot", "-n", namespace).stdout
    for name in ("release-chat", "web-1-4-2", "payments-2-0-0-cab", "payments-ring-0", "payments-ring-0-fix"):
        assert name in out
    header = stack.kubectl("get", "dtask", "-n", namespace).stdout.splitlines()[0].split()
    assert header[:4] == ["NAME", "APP", "VERSION", "MAX"]
    assert "PHASE" in header and "AGE" in header


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        ("DeploymentTask", {"app": "web", "version": "1.0.0", "maxRing": 7}, "spec.maxRing"),
        ("DeploymentTask", {"app": "web", "version": "1.0.0", "maxRing": 1, "action": "Explode"}, "spec.action"),
        ("DeploymentTask", {"app": "Web_App", "version": "1.0.0", "maxRing": 1}, "spec.app"),
        (
            "Conversation",
            {"user": "dev-viewer", "messages": [{"id": "m1", "text": "x" * 4001}]},
            "spec.messages[0].text",
        ),
        ("Conversation", {"user": "dev-viewer", "messages": [{"id": "m1", "text": ""}]}, "spec.messages[0].text"),
        ("Assignment", {"app": "web", "version": "1", "ring": 0, "target": {"plane": "mars"}}, "spec.target.plane"),
        ("Remediation", {"requestedBy": "dev-operator"}, "spec.assignment"),
    ],
)
def test_objects_outside_the_schema_are_refused_naming_the_field(
    stack: Stack, namespace: str, kind: str, spec: dict[str, Any], field: str
) -> None:
    doc = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "bad", "namespace": namespace},
        "spec": spec,
    }
    result = stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), check=False)
    assert result.returncode != 0
    assert field in result.stderr
    assert "is invalid" in result.stderr


def test_a_semantic_error_sets_invalid_spec_and_changes_nothing_else(stack: Stack, namespace: str) -> None:
    doc = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "Assignment",
        "metadata": {"name": "no-target", "namespace": namespace},
        "spec": {"app": "web", "version": "1.4.1", "ring": 0, "target": {"plane": "kubernetes"}},
    }
    stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc))

    def invalid() -> dict[str, Any] | None:
        obj = stack.get("assignments", "no-target", namespace)
        conds = {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}
        return conds.get("InvalidSpec")

    cond = wait_for(invalid, 30, what="InvalidSpec")
    assert cond["status"] == "True"
    assert "spec.target.namespace: required for the kubernetes plane" in cond["message"]
    events = json.loads(stack.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    rejected = [e for e in events if e["involvedObject"]["name"] == "no-target" and e["reason"] == "SpecRejected"]
    labels = stack.get("assignments", "no-target", namespace)["metadata"]["labels"]
    correlation_id = labels["ringpilot.dev/correlation-id"]
    assert rejected and rejected[0]["message"].endswith(f"[correlation {correlation_id}]")
