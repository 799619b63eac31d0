"""Test CRDs for the emulator suite: `widgets.example.dev` (every schema keyword) and `gears`.

`Widget` is namespaced with a status subresource, printer columns, short names, categories and two
versions; `Gear` is cluster-scoped without a status subresource or printer columns.
"""

from __future__ import annotations

import copy
from typing import Any

GROUP = "example.dev"
CONDITION = {
    "type": "object",
    "required": ["type", "status"],
    "properties": {
        "type": {"type": "string"},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "reason": {"type": "string"},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
    },
}
WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A Widget ships a thing through rings.",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["app"],
            "description": "What the widget wants.",
            "properties": {
                "app": {
                    "type": "string",
                    "minLength": 2,
                    "maxLength": 20,
                    "pattern": "^[a-z][a-z0-9-]*$",
                    "description": "The application name.",
                },
                "maxRing": {"type": "integer", "minimum": 0, "maximum": 4, "default": 1},
                "replicas": {
                    "type": "integer",
                    "minimum": 0,
                    "exclusiveMinimum": True,
                    "maximum": 100,
                    "exclusiveMaximum": True,
                },
                "weight": {"type": "number", "multipleOf": 0.5},
                "action": {"type": "string", "enum": ["Deploy", "Rollback"], "default": "Deploy"},
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "maxItems": 3,
                    "x-kubernetes-list-type": "set",
                },
                "deadline": {"type": "string", "format": "date-time"},
                "note": {"type": "string", "nullable": True},
                "port": {"x-kubernetes-int-or-string": True},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 10}},
                "targets": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "weight": {"type": "integer", "default": 1},
                        },
                    },
                },
                "paused": {"type": "boolean"},
                "code": {"type": "string", "minLength": 3},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "phase": {"type": "string", "enum": ["Pending", "Ready", "Failed"]},
                "observedGeneration": {"type": "integer"},
                "conditions": {"type": "array", "items": CONDITION},
            },
        },
    },
}
COLUMNS = [
    {"name": "App", "type": "string", "jsonPath": ".spec.app"},
    {"name": "Ring", "type": "integer", "jsonPath": ".spec.maxRing"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wg", "wgt"],
            "categories": ["gizmos"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": COLUMNS,
                "schema": {"openAPIV3Schema": WIDGET_SCHEMA},
            },
            {
                "name": "v1beta1",
                "served": True,
                "storage": False,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": WIDGET_SCHEMA},
            },
        ],
    },
}
GEAR_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"gears.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Cluster",
        "names": {"plural": "gears", "singular": "gear", "kind": "Gear", "categories": ["gizmos"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str, namespace: str | None = "default", **spec: Any) -> dict[str, Any]:
    """A Widget body; `spec` defaults to `{"app": "web"}`."""
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": meta, "spec": spec or {"app": "web"}}


def crds() -> list[dict[str, Any]]:
    return [copy.deepcopy(WIDGET_CRD), copy.deepcopy(GEAR_CRD)]
