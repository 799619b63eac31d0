"""Rendering the ringpilot chart with Helm's own library (helm-python-sdk), for the chart's tests.

`render(values)` returns the manifests Helm would apply, as dicts in template order (NOTES.txt apart);
`VALUE_SETS` are the installs the tests render: the minimum (the two required Secrets), cert-manager,
standby with shards, namespaced RBAC, and everything optional switched on.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "ringpilot"
NAMESPACE = "ringpilot-system"
Json = dict[str, Any]

#: What every install must say: the Secrets holding the database and Redis URLs.
REQUIRED: Json = {"database": {"existingSecret": "ringpilot-db"}, "redis": {"existingSecret": "ringpilot-redis"}}


def merged(*layers: Json) -> Json:
    """Deep-merge value layers, later ones winning."""
    out: Json = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


VALUE_SETS: dict[str, Json] = {
    "defaults": REQUIRED,
    "cert-manager": merged(REQUIRED, {"webhook": {"certManager": {"enabled": True}}}),
    "standby-shards": merged(
        REQUIRED,
        {
            "controller": {
                "standby": True,
                "shards": [
                    {"name": "early", "namespaces": ["ring-0-*", "ring-1-*"]},
                    {"name": "late", "namespaces": ["ring-2-*", "ring-3-*", "ring-4-*", "default"]},
                ],
            },
            "worker": {
                "kedaRedisAddress": "redis.data:6379",
                "kedaRedisPasswordSecret": "ringpilot-redis-password",
                "turns": {"keda": {"enabled": True}},
                "steps": {"replicas": 3},
            },
            "gateway": {"replicas": 3},
        },
    ),
    "namespaced-rbac": merged(
        REQUIRED, {"rbac": {"namespaced": True, "namespaces": ["default", "ring-0-lab", "ring-1-canary"]}}
    ),
    "everything-on": merged(
        REQUIRED,
        {
            "llm": {"existingSecret": "ringpilot-llm", "provider": "anthropic"},
            "gateway": {
                "auth": {"mode": "tokens", "tokens": {"existingSecret": "ringpilot-gateway-tokens"}},
                "ingress": {"enabled": True, "className": "nginx", "hosts": ["chat.example.com"], "tlsSecret": "tls"},
                "httpRoute": {"enabled": True, "parentRefs": [{"name": "public"}], "hosts": ["chat.example.com"]},
            },
            "monitoring": {"serviceMonitor": True, "prometheusRule": True, "dashboard": True},
            "networkPolicy": {"enabled": True, "metricsFrom": [{"namespaceSelector": {"matchLabels": {"m": "1"}}}]},
        },
    ),
}


def render_files(values: Json, *, upgrade: bool = False) -> dict[str, str]:
    """Helm's rendered templates by file name (schema validation included)."""
    with helm.Chart.load(CHART) as chart:
        rendered: dict[str, str] = chart.render(
            values, name="ringpilot", namespace=NAMESPACE, is_install=not upgrade, is_upgrade=upgrade
        )
        return rendered


def render(values: Json, *, upgrade: bool = False) -> list[Json]:
    """The manifests of a render, NOTES.txt left out."""
    docs: list[Json] = []
    for name, text in render_files(values, upgrade=upgrade).items():
        if name.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def of_kind(docs: list[Json], kind: str) -> list[Json]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Json], kind: str, name: str) -> Json:
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]
