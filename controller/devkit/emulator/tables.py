"""Server-side printing: `meta.k8s.io/v1` Table responses, as `kubectl get` requests them.

Custom resources get Name plus their CRD version's `additionalPrinterColumns` (or Age when there are
none); built-in kinds get columns like the real server's. `endpoints.py` and `watching.py` call
`to_table()` when the Accept header asks for `as=Table`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .jsonpath import JsonPathError, evaluate
from .objectmeta import rfc3339_age
from .resourcetypes import ResourceType

Json = dict[str, Any]
Cell = Callable[[Json], Any]
_NAME_DESC = "Name must be unique within a namespace. Is required when creating resources."
_AGE_DESC = "CreationTimestamp is a timestamp representing the server time when this object was created."


def _col(name: str, kind: str = "string", priority: int = 0, fmt: str = "", desc: str = "") -> Json:
    return {"name": name, "type": kind, "format": fmt, "description": desc or name, "priority": priority}


def _get(obj: Json, *path: str, default: Any = None) -> Any:
    current: Any = obj
    for part in path:
        if not isinstance(current, dict) or part not in current:
            return default
        current = current[part]
    return current


def _age(obj: Json) -> str:
    return rfc3339_age(_get(obj, "metadata", "creationTimestamp"))


NAME = (_col("Name", fmt="name", desc=_NAME_DESC), lambda o: _get(o, "metadata", "name"))
AGE = (_col("Age", desc=_AGE_DESC), _age)


def _ports(obj: Json) -> str:
    ports = _get(obj, "spec", "ports", default=[]) or []
    text = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports if isinstance(p, dict))
    return text or "<none>"


def _joined(values: Any) -> str:
    return ",".join(values or []) or "<none>"


def _selector(labels: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "<none>"


def _pod_ready(obj: Json) -> str:
    statuses = _get(obj, "status", "containerStatuses", default=[]) or []
    total = len(_get(obj, "spec", "containers", default=[]) or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _event_object(obj: Json) -> str:
    ref = obj.get("involvedObject") or obj.get("regarding") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _event_seen(obj: Json) -> str:
    stamp = obj.get("lastTimestamp") or obj.get("eventTime") or _get(obj, "metadata", "creationTimestamp")
    return rfc3339_age(stamp)


_BUILTIN_COLUMNS: dict[tuple[str, str], list[tuple[Json, Cell]]] = {
    ("", "namespaces"): [NAME, (_col("Status"), lambda o: _get(o, "status", "phase")), AGE],
    ("", "configmaps"): [
        NAME,
        (_col("Data", "integer"), lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        AGE,
    ],
    ("", "secrets"): [
        NAME,
        (_col("Type"), lambda o: o.get("type")),
        (_col("Data", "integer"), lambda o: len(o.get("data") or {})),
        AGE,
    ],
    ("", "serviceaccounts"): [NAME, (_col("Secrets", "integer"), lambda o: len(o.get("secrets") or [])), AGE],
    ("", "pods"): [
        NAME,
        (_col("Ready"), _pod_ready),
        (_col("Status"), lambda o: _get(o, "status", "reason") or _get(o, "status", "phase")),
        (
            _col("Restarts", "string"),
            lambda o: str(
                sum(s.get("restartCount", 0) for s in _get(o, "status", "containerStatuses", default=[]) or [])
            ),
        ),
        AGE,
        (_col("IP", priority=1), lambda o: _get(o, "status", "podIP", default="<none>")),
        (_col("Node", priority=1), lambda o: _get(o, "spec", "nodeName", default="<none>")),
    ],
    ("", "services"): [
        NAME,
        (_col("Type"), lambda o: _get(o, "spec", "type")),
        (_col("Cluster-IP"), lambda o: _get(o, "spec", "clusterIP")),
        (_col("External-IP"), lambda o: _joined(_get(o, "spec", "externalIPs"))),
        (_col("Port(s)"), _ports),
        AGE,
        (_col("Selector", priority=1), lambda o: _selector(_get(o, "spec", "selector"))),
    ],
    ("apps", "deployments"): [
        NAME,
        (
            _col("Ready"),
            lambda o: f"{_get(o, 'status', 'readyReplicas', default=0)}/{_get(o, 'spec', 'replicas', default=0)}",
        ),
        (_col("Up-to-date", "integer"), lambda o: _get(o, "status", "updatedReplicas", default=0)),
        (_col("Available", "integer"), lambda o: _get(o, "status", "availableReplicas", default=0)),
        AGE,
        (
            _col("Containers", priority=1),
            lambda o: ",".join(
                c.get("name", "") for c in _get(o, "spec", "template", "spec", "containers", default=[]) or []
            ),
        ),
        (
            _col("Images", priority=1),
            lambda o: ",".join(
                c.get("image", "") for c in _get(o, "spec", "template", "spec", "containers", default=[]) or []
            ),
        ),
        (_col("Selector", priority=1), lambda o: _selector(_get(o, "spec", "selector", "matchLabels"))),
    ],
    ("coordination.k8s.io", "leases"): [NAME, (_col("Holder"), lambda o: _get(o, "spec", "holderIdentity")), AGE],
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        NAME,
        (_col("Created At", "date"), lambda o: _get(o, "metadata", "creationTimestamp")),
    ],
}
_EVENT_COLUMNS: list[tuple[Json, Cell]] = [
    (_col("Last Seen"), _event_seen),
    (_col("Type"), lambda o: o.get("type")),
    (_col("Reason"), lambda o: o.get("reason")),
    (_col("Object"), _event_object),
    (_col("Message"), lambda o: o.get("message") or o.get("note")),
    (_col("Name", priority=1, fmt="name"), lambda o: _get(o, "metadata", "name")),
]
_BUILTIN_COLUMNS[("", "events")] = _EVENT_COLUMNS
_BUILTIN_COLUMNS[("events.k8s.io", "events")] = _EVENT_COLUMNS


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _custom_cell(column: Json) -> Cell:
    path, kind = column.get("jsonPath", ""), column.get("type", "string")

    def cell(obj: Json) -> Any:
        try:
            results = evaluate(path, obj)
        except JsonPathError:
            return None
        if not results or results[0] is None:
            return None
        value = results[0]
        if kind == "date":
            return rfc3339_age(value) if isinstance(value, str) else None
        if kind == "integer":
            return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        if kind == "number":
            return value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if kind == "boolean":
            return value if isinstance(value, bool) else None
        return _text(value)

    return cell


def columns_for(rt: ResourceType) -> list[tuple[Json, Cell]]:
    if not rt.custom:
        return _BUILTIN_COLUMNS.get(rt.key, [NAME, AGE])
    if not rt.printer_columns:
        return [NAME, AGE]
    result = [NAME]
    for column in rt.printer_columns:
        definition = _col(
            column.get("name", ""),
            column.get("type", "string"),
            int(column.get("priority", 0)),
            column.get("format", ""),
            column.get("description", ""),
        )
        result.append((definition, _custom_cell(column)))
    return result


def _row_object(obj: Json, include: str) -> Json | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return partial_metadata(obj)


def partial_metadata(obj: Json) -> Json:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def to_table(
    rt: ResourceType, objects: list[Json], list_meta: Json, include: str = "Metadata", with_columns: bool = True
) -> Json:
    """A Table of `objects` (a list or a single object) with the resource's columns."""
    columns = columns_for(rt)
    rows = []
    for obj in objects:
        row: Json = {"cells": [cell(obj) for _, cell in columns]}
        embedded = _row_object(obj, include)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    table: Json = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "rows": rows}
    table["columnDefinitions"] = [definition for definition, _ in columns] if with_columns else None
    return table
