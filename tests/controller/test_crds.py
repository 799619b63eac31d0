"""The CRDs in crds/ are generated from the models and are valid structural schemas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.api.crdgen import all_crds, render, structural, write_crds
from controller.api.kinds import KINDS
from controller.cli import main

ROOT = Path(__file__).resolve().parents[2]


def walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        out += walk(sub, f"{path}.{name}")
    if "items" in node:
        out += walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out += walk(node["additionalProperties"], f"{path}{{}}")
    return out


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["metadata"]["name"])
def test_committed_crd_matches_the_models(crd: dict[str, Any]) -> None:
    path = ROOT / "crds" / f"{crd['metadata']['name']}.yaml"
    assert path.exists(), f"{path.name} missing: run `ringpilot crds`"
    assert path.read_text() == render(crd), f"{path.name} is stale: run `ringpilot crds`"


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["metadata"]["name"])
def test_crd_schema_is_structural_and_documented(crd: dict[str, Any]) -> None:
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    for path, node in walk(schema["properties"]["spec"], "spec"):
        assert "type" in node, f"{path} has no type"
        assert not node.get("x-kubernetes-preserve-unknown-fields"), f"{path} preserves unknown fields"
        assert "$ref" not in node and "anyOf" not in node and "title" not in node, path
        assert not ("properties" in node and "additionalProperties" in node), path
    for path, node in walk(schema["properties"]["status"], "status"):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
    spec_fields = schema["properties"]["spec"]["properties"]
    undocumented = [name for name, node in spec_fields.items() if not node.get("description")]
    assert undocumented == [], f"spec fields without description: {undocumented}"
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["categories"] == ["ringpilot"]
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names[-1] == "Age"


#: Per kind: its short name, and the printer column that says where an object stands.
STATE_COLUMNS = {
    "Conversation": ("conv", "Ready", '.status.conditions[?(@.type=="Ready")].status'),
    "DeploymentTask": ("dtask", "Phase", ".status.phase"),
    "ChangeRequest": ("chg", "Phase", ".status.phase"),
    "Assignment": ("asg", "Sync", ".status.sync"),
    "Remediation": ("rem", "Phase", ".status.phase"),
}


def field_at(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    """The schema node a printer column's `.a.b[?(...)].c` path reads, or None if the models have no such field."""
    node: dict[str, Any] | None = schema
    for part in re.sub(r"\[[^\]]*\]", "[]", json_path).lstrip(".").split("."):
        name = part.removesuffix("[]")
        if node is None or name not in node.get("properties", {}):
            return None
        node = node["properties"][name]
        if part.endswith("[]"):
            node = node.get("items")
    return node


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["metadata"]["name"])
def test_each_kind_shows_its_state_and_every_column_reads_a_real_field(crd: dict[str, Any]) -> None:
    kind = crd["spec"]["names"]["kind"]
    short_name, state, state_path = STATE_COLUMNS[kind]
    assert crd["spec"]["names"]["shortNames"] == [short_name]
    version = crd["spec"]["versions"][0]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns[state] == state_path
    schema = version["schema"]["openAPIV3Schema"]
    missing = [n for n, path in columns.items() if not path.startswith(".metadata.") and field_at(schema, path) is None]
    assert missing == [], f"{kind} columns read fields the models do not have: {missing}"


def test_every_kind_has_a_sample() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in (ROOT / "crds" / "samples").glob("*.yaml")}
    assert kinds == {info.kind for info in KINDS}


def test_crds_command_writes_one_file_per_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds", "--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(f"{i.plural}.ringpilot.dev.yaml" for i in KINDS)
    assert "deploymenttasks.ringpilot.dev.yaml" in capsys.readouterr().out


def test_write_crds_round_trips_through_yaml(tmp_path: Path) -> None:
    expected = {crd["metadata"]["name"]: crd for crd in all_crds()}
    written = {path.name: yaml.safe_load(path.read_text()) for path in write_crds(tmp_path)}
    assert written == {f"{name}.yaml": crd for name, crd in expected.items()}


def test_optional_fields_are_flattened_and_free_maps_preserved() -> None:
    defs = {"Inner": {"type": "object", "properties": {"a": {"type": "integer", "title": "A"}}}}
    node = {"anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}], "default": None, "description": "x"}
    assert structural(node, defs) == {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "description": "x",
    }
    assert structural({"type": "object", "additionalProperties": True}, {}) == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert structural({"type": "string", "const": "v"}, {}) == {"type": "string", "enum": ["v"]}
    assert structural({"type": "number", "exclusiveMinimum": 0}, {}) == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
    }


def test_unions_that_cannot_be_structural_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot express union"):
        structural({"anyOf": [{"type": "string"}, {"type": "integer"}]}, {})
