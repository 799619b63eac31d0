"""Generate CustomResourceDefinitions from the pydantic models (the single source of truth).

Pydantic's JSON Schema is turned into a Kubernetes *structural* schema: references inlined,
optionals flattened, titles dropped, free-form maps marked to preserve unknown fields.
`ringpilot crds` writes the result to crds/; a test fails when the committed YAML differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from controller.api.group import CATEGORY, GROUP, VERSION
from controller.api.kinds import KINDS, KindInfo

_DROP = {"title", "$defs", "additionalProperties", "discriminator"}
_KEEP_FORMATS = {"date-time", "int32", "int64", "float", "double", "byte", "date"}


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    return node


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Convert one pydantic JSON-Schema node to an OpenAPI v3 structural schema node."""
    node = _resolve(node, defs)
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if options is not None:
            non_null = [o for o in options if o.get("type") != "null"]
            if len(non_null) != 1:
                raise ValueError(f"cannot express union {options!r} structurally")
            rest = {k: v for k, v in node.items() if k != key}
            node = {**_resolve(non_null[0], defs), **rest}
            if rest.get("default", 0) is None:
                node.pop("default")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "format" and value not in _KEEP_FORMATS:
            continue
        elif key == "properties":
            out["properties"] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out["items"] = structural(value, defs)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = value
    extra = node.get("additionalProperties")
    if out.get("type") == "object" and "properties" not in out:
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = structural(extra, defs)
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("description", "").strip() == "":
        out.pop("description", None)
    return out


def model_schema(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema = structural(raw, raw.get("$defs", {}))
    doc = (model.__doc__ or "").strip()
    if doc:
        schema["description"] = doc.splitlines()[0]
    return schema


def _conditions_as_map(status: dict[str, Any]) -> None:
    conds = status.get("properties", {}).get("conditions")
    if conds is not None:
        conds["x-kubernetes-list-type"] = "map"
        conds["x-kubernetes-list-map-keys"] = ["type"]


def build_crd(info: KindInfo) -> dict[str, Any]:
    """The CRD manifest for one kind."""
    spec = model_schema(info.spec_model)
    status = model_schema(info.status_model)
    _conditions_as_map(status)
    columns = [
        {
            "name": c.name,
            "type": c.type,
            "jsonPath": c.json_path,
            **({"description": c.description} if c.description else {}),
            **({"priority": c.priority} if c.priority else {}),
        }
        for c in info.columns
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{info.plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "ringpilot"}},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": info.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "API version of the object."},
                                "kind": {"type": "string", "description": "Kind of the object."},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [build_crd(info) for info in KINDS]


def render(crd: dict[str, Any]) -> str:
    header = "# Generated by `ringpilot crds` from controller/api; do not edit by hand.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, width=120)


def write_crds(directory: Path) -> list[Path]:
    """Write crds/<plural>.ringpilot.dev.yaml for every kind; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for crd in all_crds():
        path = directory / f"{crd['metadata']['name']}.yaml"
        path.write_text(render(crd))
        paths.append(path)
    return paths
