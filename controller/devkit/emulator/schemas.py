"""Structural-schema handling for custom resources: pruning, defaulting and validation.

Mirrors the apiextensions-apiserver pipeline (prune unknown fields and non-nullable nulls, apply
`default`s, validate against `openAPIV3Schema`) with kube-openapi's error messages. Called by
`preparing.py` for every write of a custom resource.
"""

from __future__ import annotations

import base64
import copy
import datetime
import ipaddress
import re
import uuid
from typing import Any

from .apierrors import FieldError
from .patching import json_equal

Json = dict[str, Any]
Path = tuple[str | int, ...]
_ROOT_KEEP = ("apiVersion", "kind", "metadata")
_DATE_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


def path_string(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _preserves(schema: Json) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


def prune(value: Any, schema: Json | None, path: Path, unknown: list[str], root: bool = False) -> Any:
    """Drop fields the schema does not declare (recording them in `unknown`) and non-nullable nulls."""
    if schema is None:
        return value
    if isinstance(value, dict):
        props: Json = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        embedded = root or schema.get("x-kubernetes-embedded-resource")
        for key in list(value):
            if embedded and key in _ROOT_KEEP:
                continue
            sub = props.get(key)
            if sub is None and isinstance(extra, dict):
                sub = extra
            if sub is None:
                if not _preserves(schema) and extra is not True:
                    unknown.append(path_string((*path, key)))
                    del value[key]
                continue
            if value[key] is None and not sub.get("nullable"):
                del value[key]
                continue
            value[key] = prune(value[key], sub, (*path, key), unknown)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            value[i] = prune(item, schema["items"], (*path, i), unknown)
    return value


def apply_defaults(value: Any, schema: Json | None) -> Any:
    """Fill in `default` values for absent properties, recursively (in place)."""
    if schema is None:
        return value
    if isinstance(value, dict):
        props: Json = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value and key != "metadata":
                value[key] = apply_defaults(value[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in value:
                if key not in props:
                    value[key] = apply_defaults(value[key], extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            value[i] = apply_defaults(item, schema["items"])
    return value


def _is_type(value: Any, wanted: str) -> bool:
    actual = type_name(value)
    if wanted == "number":
        return actual in ("integer", "number")
    if wanted == "integer" and actual == "number":
        return bool(value.is_integer())
    return actual == wanted


def _num(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _check_format(value: str, fmt: str) -> bool:
    try:
        if fmt == "date-time":
            stamp = value.replace("z", "Z").replace("Z", "+00:00")
            return bool(_DATE_TIME_RE.match(value)) and datetime.datetime.fromisoformat(stamp) is not None
        if fmt == "date":
            return datetime.date.fromisoformat(value) is not None and len(value) == 10
        if fmt == "uuid":
            return str(uuid.UUID(value)) == value.lower()
        if fmt == "byte":
            return base64.b64decode(value, validate=True) is not None
        if fmt in ("ipv4", "ipv6"):
            return ipaddress.ip_address(value).version == int(fmt[-1])
    except ValueError:
        return False
    return True


class Validator:
    """Collects `FieldError`s for one value against one structural schema."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def _add(self, reason: str, path: Path, value: Any = None, detail: str = "") -> None:
        self.errors.append(FieldError(reason, path_string(path), detail, value, path))

    def _invalid(self, path: Path, value: Any, message: str) -> None:
        self._add("FieldValueInvalid", path, value, f"{path_string(path)} in body {message}")

    def validate(self, value: Any, schema: Json, path: Path = (), root: bool = False) -> list[FieldError]:
        start = len(self.errors)
        self._validate(value, schema, path, root)
        return self.errors[start:]

    def _validate(self, value: Any, schema: Json, path: Path, root: bool = False) -> None:
        if value is None and schema.get("nullable"):
            return
        wanted = schema.get("type")
        if schema.get("x-kubernetes-int-or-string"):
            if type_name(value) not in ("integer", "string"):
                self._add(
                    "FieldValueTypeInvalid",
                    path,
                    type_name(value),
                    f'{path_string(path)} in body must be of type integer,string: "{type_name(value)}"',
                )
                return
        elif wanted and not _is_type(value, wanted):
            self._add(
                "FieldValueTypeInvalid",
                path,
                type_name(value),
                f'{path_string(path)} in body must be of type {wanted}: "{type_name(value)}"',
            )
            return
        if "enum" in schema and not any(json_equal(value, e) for e in schema["enum"]):
            allowed = ", ".join(f'"{e}"' if isinstance(e, str) else '"' + _num(e) + '"' for e in schema["enum"])
            self._add("FieldValueNotSupported", path, value, f"supported values: {allowed}")
        if isinstance(value, str):
            self._string(value, schema, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._number(value, schema, path)
        elif isinstance(value, list):
            self._array(value, schema, path)
        elif isinstance(value, dict):
            self._object(value, schema, path, root)
        self._combinators(value, schema, path)

    def _string(self, value: str, schema: Json, path: Path) -> None:
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            self._add("FieldValueTooLong", path, value, f"may not be more than {schema['maxLength']} bytes")
        if "minLength" in schema and len(value) < schema["minLength"]:
            self._invalid(path, value, f"should be at least {schema['minLength']} chars long")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            self._invalid(path, value, f"should match '{schema['pattern']}'")
        if "format" in schema and not _check_format(value, schema["format"]):
            self._add(
                "FieldValueTypeInvalid",
                path,
                value,
                f'{path_string(path)} in body must be of type {schema["format"]}: "{value}"',
            )

    def _number(self, value: float, schema: Json, path: Path) -> None:
        if "maximum" in schema:
            limit = schema["maximum"]
            if schema.get("exclusiveMaximum") and value >= limit:
                self._invalid(path, value, f"should be less than {_num(limit)}")
            elif value > limit:
                self._invalid(path, value, f"should be less than or equal to {_num(limit)}")
        if "minimum" in schema:
            limit = schema["minimum"]
            if schema.get("exclusiveMinimum") and value <= limit:
                self._invalid(path, value, f"should be greater than {_num(limit)}")
            elif value < limit:
                self._invalid(path, value, f"should be greater than or equal to {_num(limit)}")
        factor = schema.get("multipleOf")
        if factor and (value / factor) != int(value / factor):
            self._invalid(path, value, f"should be a multiple of {_num(factor)}")

    def _array(self, value: list[Any], schema: Json, path: Path) -> None:
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            items = "item" if schema["maxItems"] == 1 else "items"
            self._add("FieldValueTooMany", path, len(value), f"must have at most {schema['maxItems']} {items}")
        if "minItems" in schema and len(value) < schema["minItems"]:
            self._invalid(path, value, f"should have at least {schema['minItems']} items")
        list_type = schema.get("x-kubernetes-list-type")
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen: list[Any] = []
        for i, item in enumerate(value):
            ident = [item.get(k) for k in keys] if list_type == "map" and isinstance(item, dict) else item
            if (list_type in ("set", "map") or schema.get("uniqueItems")) and ident in seen:
                if schema.get("uniqueItems") and list_type is None:
                    self._invalid(path, value, "shouldn't contain duplicates")
                    break
                self._add("FieldValueDuplicate", (*path, i), ident[0] if len(keys) == 1 else ident)
            seen.append(ident)
            if isinstance(schema.get("items"), dict):
                self._validate(item, schema["items"], (*path, i))

    def _object(self, value: Json, schema: Json, path: Path, root: bool) -> None:
        for key in schema.get("required") or []:
            if key not in value or value[key] is None:
                self._add("FieldValueRequired", (*path, key))
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            self._add("FieldValueTooMany", path, len(value), f"must have at most {schema['maxProperties']} items")
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            self._invalid(path, value, f"should have at least {schema['minProperties']} properties")
        props: Json = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if root and key in _ROOT_KEEP:
                continue
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                self._validate(item, sub, (*path, key))

    def _passes(self, value: Any, schema: Json, path: Path) -> bool:
        return not Validator().validate(value, schema, path)

    def _combinators(self, value: Any, schema: Json, path: Path) -> None:
        for sub in schema.get("allOf") or []:
            self._validate(value, sub, path)
        if "anyOf" in schema and not any(self._passes(value, s, path) for s in schema["anyOf"]):
            self._invalid(path, value, "must validate at least one schema (anyOf)")
        if "oneOf" in schema and sum(self._passes(value, s, path) for s in schema["oneOf"]) != 1:
            self._invalid(path, value, "must validate one and only one schema (oneOf)")
        if "not" in schema and self._passes(value, schema["not"], path):
            self._invalid(path, value, "must not validate the schema (not)")


def lookup(obj: Any, path: Path) -> tuple[bool, Any]:
    for part in path:
        if isinstance(part, int):
            if not isinstance(obj, list) or part >= len(obj):
                return False, None
        elif not isinstance(obj, dict) or part not in obj:
            return False, None
        obj = obj[part]
    return True, obj


def validate_object(obj: Json, schema: Json, old: Json | None = None) -> list[FieldError]:
    """Validate a whole custom resource; with `old`, unchanged fields are not re-checked (ratcheting)."""
    errors = Validator().validate(obj, schema, (), root=True)
    if old is None:
        return errors
    kept = []
    for error in errors:
        found_new, new_value = lookup(obj, error.path)
        found_old, old_value = lookup(old, error.path)
        if not (found_new and found_old and new_value == old_value):
            kept.append(error)
    return kept
