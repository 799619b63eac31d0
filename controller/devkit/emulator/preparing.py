"""Admission of one write: system fields, the status subresource, defaulting, pruning and validation.

`admit()` turns a client's body (create) or the merged result (update, patch) into the object to
store, or raises `ApiError`. `verbs.py` calls it after preconditions and before committing.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from .apierrors import ApiError, FieldError
from .builtins import prepare_builtin
from .objectmeta import (
    SYSTEM_FIELDS,
    finalizers_added,
    new_uid,
    now_rfc3339,
    prune_meta,
    validate_meta,
    validate_name,
)
from .resourcetypes import RBAC_GROUP, ResourceType
from .schemas import apply_defaults, prune, validate_object

Json = dict[str, Any]
FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


@dataclass
class WriteOptions:
    """Per-request write settings from the query string."""

    subresource: str | None = None
    field_validation: str = "Warn"
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)


def clone(value: Any) -> Any:
    """A deep copy of a JSON value (faster than `copy.deepcopy` for plain JSON)."""
    return json.loads(json.dumps(value))


def check_identity(rt: ResourceType, body: Json, kinds_by_version: set[str]) -> None:
    """Reject a body whose apiVersion/kind belong to another resource (400, as the real server)."""
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if kind not in (None, "", rt.kind):
        raise ApiError.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
    if api_version not in (None, "", rt.api_version) and api_version not in kinds_by_version:
        raise ApiError.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
        )


def _spec_changed(rt: ResourceType, new: Json, old: Json) -> bool:
    skip = {"metadata", "apiVersion", "kind"} | ({"status"} if rt.has_status else set())
    return any(new.get(k) != old.get(k) for k in (set(new) | set(old)) - skip)


def _from_old(rt: ResourceType, new: Json, old: Json, opts: WriteOptions) -> Json:
    if opts.subresource == "status":
        result: Json = copy.deepcopy(old)
        if "status" in new:
            result["status"] = new["status"]
        else:
            result.pop("status", None)
        return result
    meta, old_meta = new["metadata"], old["metadata"]
    for name in SYSTEM_FIELDS:
        if name in old_meta:
            meta[name] = old_meta[name]
        else:
            meta.pop(name, None)
    if rt.has_status:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    return new


def _unknown_fields(unknown: list[str], rt: ResourceType, opts: WriteOptions) -> None:
    if not unknown or opts.field_validation == "Ignore":
        return
    texts = [f'unknown field "{path}"' for path in unknown]
    if opts.field_validation == "Strict":
        raise ApiError.bad_request(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
            f"strict decoding error: {', '.join(texts)}"
        )
    opts.warnings.extend(texts)


def admit(rt: ResourceType, new: Json, old: Json | None, opts: WriteOptions) -> Json:
    """Return the object to store for this write (a mutable copy), or raise `ApiError`."""
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        raise ApiError.bad_request("Object 'metadata' is missing or not an object")
    name = meta.get("name", "")
    unknown = prune_meta(meta)
    new = {
        "apiVersion": rt.api_version,
        "kind": rt.kind,
        **{k: v for k, v in new.items() if k not in ("apiVersion", "kind")},
    }
    if old is None:
        meta.update(uid=new_uid(), creationTimestamp=now_rfc3339(), generation=1)
        for gone in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            meta.pop(gone, None)
        if rt.has_status:
            new.pop("status", None)
    else:
        new = _from_old(rt, new, old, opts)
        meta = new["metadata"]
    segment = rt.group == RBAC_GROUP
    errors = validate_name(name, label=rt.key == ("", "namespaces"), segment=segment) + validate_meta(meta)
    if old is not None and old["metadata"].get("deletionTimestamp"):
        added = finalizers_added(old, new)
        if added:
            errors.append(
                FieldError(
                    "FieldValueForbidden",
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted, found new finalizers "
                    + "[]string{"
                    + ", ".join(json.dumps(f) for f in added)
                    + "}",
                )
            )
    if not rt.custom:
        errors += prepare_builtin(rt, new, old)
    elif rt.schema:
        schema_unknown: list[str] = []
        prune(new, rt.schema, (), schema_unknown, root=True)
        unknown += schema_unknown
        apply_defaults(new, rt.schema)
        errors += validate_object(new, rt.schema, old)
    if errors:
        raise ApiError.invalid(rt.group, rt.kind, name, errors)
    _unknown_fields(unknown, rt, opts)
    if old is not None and _spec_changed(rt, new, old):
        meta["generation"] = int(old["metadata"].get("generation") or 1) + 1
    return new
