"""The three patch formats of the Kubernetes API: JSON merge, JSON (RFC 6902) and strategic merge.

Pure functions over JSON values, called by the write path in `verbs.py`. They never mutate their
inputs. Failures raise `PatchError`, which the API answers with 422 as the real server does.
"""

from __future__ import annotations

import copy
from typing import Any

MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "readinessGates": "conditionType",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
}
PRIMITIVE_MERGE_LISTS = {"finalizers"}
_DELETE = object()


class PatchError(ValueError):
    """The patch cannot be applied to the object."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'JSON pointer must start with "/": {path!r}')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str], op: str, path: str) -> Any:
    for part in parts:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise PatchError(f"{op} operation does not apply: doc is missing path: {path}: missing value")
    return doc


def _add(doc: Any, parts: list[str], value: Any, path: str, op: str = "add") -> Any:
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1], op, path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError(f"{op} operation does not apply: index out of bounds: {path}")
    else:
        raise PatchError(f"{op} operation does not apply: doc is missing path: {path}: missing value")
    return doc


def _remove(doc: Any, parts: list[str], path: str, op: str = "remove") -> Any:
    if not parts:
        raise PatchError(f"{op} operation does not apply: cannot remove the whole document")
    parent = _resolve(doc, parts[:-1], op, path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise PatchError(f"{op} operation does not apply: doc is missing path: {path}: missing value")


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values where `true` is not `1` (unlike Python's `==`)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch, including `test`; returns the patched copy."""
    if not isinstance(operations, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"invalid JSON patch operation: {operation!r}")
        op, path = operation["op"], operation["path"]
        parts = _pointer(path)
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"{op} operation: missing value")
        value = copy.deepcopy(operation.get("value"))
        if op == "add":
            doc = _add(doc, parts, value, path)
        elif op == "remove":
            _remove(doc, parts, path)
        elif op == "replace":
            if not parts:
                doc = value
                continue
            _resolve(doc, parts, "replace", path)
            parent = _resolve(doc, parts[:-1], "replace", path)
            parent[int(parts[-1]) if isinstance(parent, list) else parts[-1]] = value
        elif op in ("move", "copy"):
            source = operation.get("from", "")
            from_parts = _pointer(source)
            if op == "move":
                moved = _remove(doc, from_parts, source, "move")
            else:
                moved = copy.deepcopy(_resolve(doc, from_parts, "copy", source))
            doc = _add(doc, parts, moved, path, op)
        elif op == "test":
            try:
                current = _resolve(doc, parts, "test", path)
            except PatchError:
                current = _DELETE
            if current is _DELETE or not json_equal(current, value):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {op}")
    return doc


def _merge_key(field: str, original: list[Any], patch: list[Any]) -> str | None:
    if field == "ports":
        sample = next((x for x in [*patch, *original] if isinstance(x, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return MERGE_KEYS.get(field)


def _merge_list(field: str, original: Any, patch: list[Any]) -> list[Any]:
    original = original if isinstance(original, list) else []
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [strategic_merge({}, x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    key = _merge_key(field, original, patch)
    if key is None:
        if field in PRIMITIVE_MERGE_LISTS:
            return [*original, *[x for x in patch if x not in original]]
        return [strategic_merge({}, x) if isinstance(x, dict) else x for x in patch]
    result = list(original)
    for item in patch:
        if not isinstance(item, dict):
            result.append(item)
            continue
        wanted = item.get(key)
        if item.get("$patch") == "delete":
            result = [x for x in result if not (isinstance(x, dict) and x.get(key) == wanted)]
            continue
        for i, existing in enumerate(result):
            if isinstance(existing, dict) and existing.get(key) == wanted:
                result[i] = strategic_merge(existing, item)
                break
        else:
            result.append(strategic_merge({}, item))
    return result


def _reorder(items: list[Any], order: list[Any]) -> list[Any]:
    """Apply `$setElementOrder`: listed items first, in the given order; the rest keep theirs."""
    keys = list(order[0]) if isinstance(order[0], dict) else None

    def identity(x: Any) -> Any:
        if keys is None:
            return x
        return tuple(x.get(k) for k in keys) if isinstance(x, dict) else None

    wanted = [identity(o) for o in order]
    ranked = sorted((x for x in items if identity(x) in wanted), key=lambda x: wanted.index(identity(x)))
    return ranked + [x for x in items if identity(x) not in wanted]


def strategic_merge(original: Any, patch: Any) -> Any:
    """Strategic merge patch for built-in kinds: lists merge by their patch merge key."""
    if not isinstance(patch, dict):
        return patch
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: strategic_merge({}, v) if isinstance(v, dict) else v for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return _DELETE
    result = dict(original) if isinstance(original, dict) else {}
    later: list[tuple[str, Any]] = []
    for key, value in patch.items():
        if key.startswith("$"):
            later.append((key, value))
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = value
    for key, value in later:
        directive_name, _, field = key.partition("/")
        if directive_name == "$deleteFromPrimitiveList" and isinstance(result.get(field), list):
            result[field] = [x for x in result[field] if x not in value]
        elif directive_name == "$setElementOrder" and isinstance(result.get(field), list) and value:
            result[field] = _reorder(result[field], value)
        elif directive_name == "$retainKeys" and isinstance(value, list):
            result = {k: v for k, v in result.items() if k in value}
    return result
