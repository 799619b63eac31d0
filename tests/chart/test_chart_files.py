"""The chart's generated files match their sources: the values model, the CRD models, the RBAC rules, the webhooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from controller.api.chartvalues import ChartValues
from controller.api.policy import Policy
from controller.api.rbacrules import component_roles
from controller.cli import main
from controller.devkit.chartgen import chart_files, rbac_data
from controller.devkit.identities import WEBHOOKS
from tests.chart.chartrender import CHART

ROOT = CHART.parents[1]


@pytest.mark.parametrize("relative", sorted(chart_files()))
def test_committed_chart_file_matches_its_source(relative: str) -> None:
    path = CHART / relative
    assert path.exists(), f"{relative} missing: run `ringpilot crds`"
    assert path.read_text() == chart_files()[relative], f"{relative} is stale: run `ringpilot crds`"


def test_the_chart_carries_exactly_the_crds_of_crds_dir() -> None:
    committed = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.ringpilot.dev.yaml")}
    in_chart = {p.name: p.read_text() for p in (CHART / "files" / "crds").glob("*.yaml")}
    assert in_chart == committed


def test_ringpilot_crds_writes_the_chart_files(tmp_path: Path) -> None:
    assert main(["crds", "--out", str(tmp_path / "crds"), "--chart", str(tmp_path / "chart")]) == 0
    written = {str(p.relative_to(tmp_path / "chart")) for p in (tmp_path / "chart").rglob("*") if p.is_file()}
    assert written == set(chart_files())


def test_the_schema_refuses_unknown_keys_at_every_level() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    objects = [schema, *schema["$defs"].values()]
    closed = [node for node in objects if node.get("type") == "object" and "properties" in node]
    assert closed, "no object schema found"
    assert all(node.get("additionalProperties") is False for node in closed)


def test_the_default_values_are_the_models_and_their_policy_loads() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values == ChartValues().model_dump(by_alias=True, mode="json")
    policy = Policy.model_validate(values["policy"]["config"])
    assert policy.rings[4].min_soak_seconds == 604_800  # production soaks, not the dev policy's
    assert policy.remediation.check_interval_seconds.critical == 900  # production drift checks: 15 min, not 1
    assert policy.remediation.initial_backoff_seconds == 3600
    assert policy.roles.users == {}


def test_every_component_rule_is_in_the_chart_once_cluster_or_namespaced() -> None:
    data = rbac_data()
    for role in component_roles():
        component = data["components"][role["metadata"]["name"].removeprefix("ringpilot-")]
        split = [
            (tuple(rule["apiGroups"]), resource, tuple(rule["verbs"]))
            for rule in component["cluster"] + component["namespaced"]
            for resource in rule["resources"]
        ]
        source = [
            (tuple(rule["apiGroups"]), resource, tuple(rule["verbs"]))
            for rule in role["rules"]
            for resource in rule["resources"]
        ]
        assert sorted(split) == sorted(source)
    cluster_resources = {r for c in data["components"].values() for rule in c["cluster"] for r in rule["resources"]}
    assert cluster_resources <= {"namespaces", "customresourcedefinitions", "tokenreviews", "users"}


def test_the_chart_configures_every_webhook_the_controller_serves() -> None:
    hooks = yaml.safe_load((CHART / "files" / "webhooks.yaml").read_text())["webhooks"]
    assert [(h["id"], h["mutating"], tuple(h["resources"])) for h in hooks] == list(WEBHOOKS)
