"""The shipped Grafana dashboard and PrometheusRule alerts: valid PromQL, only metrics we export.

Each expression is parsed with promql-parser (Grafana's `$__rate_interval` read as 5m); every metric it
selects must be one defined in controller/telemetry/metrics.py (or dramatiq's middleware), and every
alert carries a runbook annotation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from controller.telemetry import metrics

CHARTS = Path(__file__).resolve().parents[2] / "charts" / "ringpilot"
DRAMATIQ = {
    "dramatiq_messages_total",
    "dramatiq_message_errors_total",
    "dramatiq_message_retries_total",
    "dramatiq_message_rejects_total",
    "dramatiq_messages_inprogress",
    "dramatiq_delayed_messages_inprogress",
    "dramatiq_message_duration_milliseconds",
}
REQUIRED_ALERTS = {
    "RingpilotTaskStuckPastSoak",
    "RingpilotRingGateFailed",
    "RingpilotRemediationEscalated",
    "RingpilotDriftFlapping",
    "RingpilotQueueBacklog",
    "RingpilotLLMErrors",
}


def exported() -> set[str]:
    """Every series name our metrics expose (histograms as _bucket, _sum and _count)."""
    names = set()
    for metric in vars(metrics).values():
        if isinstance(metric, Histogram):
            names |= {f"{metric._name}_{suffix}" for suffix in ("bucket", "sum", "count")}
        elif isinstance(metric, Counter):
            names.add(f"{metric._name}_total")
        elif isinstance(metric, Gauge):
            names.add(metric._name)
    return names | DRAMATIQ | {f"{n}_{s}" for n in DRAMATIQ for s in ("bucket", "sum", "count")}


def selected(expr: str) -> set[str]:
    """The metric names an expression selects (raises if it does not parse)."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def dashboard_exprs() -> list[str]:
    board = json.loads((CHARTS / "dashboards" / "ringpilot.json").read_text())
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    return [re.sub(r"\$__(rate_)?interval", "5m", e) for e in exprs]


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((CHARTS / "alerts" / "ringpilot-rules.yaml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_dashboard_queries_parse_and_use_only_exported_metrics() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    used = set().union(*(selected(e) for e in exprs))
    assert used <= exported(), used - exported()
    for needed in ("ringpilot_deploymenttasks", "ringpilot_ring_gate_total", "ringpilot_queue_depth"):
        assert needed in used


def test_every_alert_parses_uses_exported_metrics_and_names_a_runbook() -> None:
    found = rules()
    assert {r["alert"] for r in found} == REQUIRED_ALERTS
    for rule in found:
        assert selected(rule["expr"]) <= exported(), (rule["alert"], selected(rule["expr"]) - exported())
        assert rule["annotations"]["runbook"].strip(), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")


def test_an_unknown_metric_or_broken_expression_is_caught() -> None:
    assert selected('sum by (x) (rate(ringpilot_nope_total{a="b"}[5m]))') == {"ringpilot_nope_total"}
    assert "ringpilot_nope_total" not in exported()
    with pytest.raises(ValueError):  # noqa: PT011 - the parser raises a plain ValueError
        selected("sum by (x) (rate(ringpilot_reconcile_total[5m])")
