"""A small JSONPath evaluator for CRD `additionalPrinterColumns` (the subset Kubernetes allows).

Supports `.a.b`, `['a.b']`, `[0]`, `[*]`, `.*`, escaped dots (`a\\.b`) and filters such as
`[?(@.type=="Ready")]` with `==`, `!=`, `<`, `<=`, `>`, `>=` or bare existence. Used by `tables.py`.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from typing import Any

Step = Callable[[list[Any]], list[Any]]

_FILTER_RE = re.compile(r"^\?\(\s*@((?:\.[^\s=!<>]+)*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)$")
_INDEX_RE = re.compile(r"^-?\d+$")
_SLICE_RE = re.compile(r"^(-?\d*):(-?\d*)$")
_ORDERING: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class JsonPathError(ValueError):
    """The expression is not in the supported JSONPath subset."""


def _child(name: str) -> Step:
    def step(values: list[Any]) -> list[Any]:
        return [v[name] for v in values if isinstance(v, dict) and name in v]

    return step


def _wildcard(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, dict):
            out.extend(v.values())
        elif isinstance(v, list):
            out.extend(v)
    return out


def _index(i: int) -> Step:
    def step(values: list[Any]) -> list[Any]:
        return [v[i] for v in values if isinstance(v, list) and -len(v) <= i < len(v)]

    return step


def _slice(start: int | None, stop: int | None) -> Step:
    def step(values: list[Any]) -> list[Any]:
        out: list[Any] = []
        for v in values:
            if isinstance(v, list):
                out.extend(v[start:stop])
        return out

    return step


def _literal(text: str) -> Any:
    text = text.strip()
    if text[:1] in ("'", '"') and text[-1:] == text[:1]:
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError as e:
        raise JsonPathError(f"unrecognized literal {text!r}") from e


def _lookup(value: Any, path: str) -> tuple[bool, Any]:
    for name in [p for p in path.split(".") if p]:
        if not isinstance(value, dict) or name not in value:
            return False, None
        value = value[name]
    return True, value


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    numeric = (int, float)
    if not (isinstance(left, numeric) and isinstance(right, numeric)) and not (
        isinstance(left, str) and isinstance(right, str)
    ):
        return False
    return bool(_ORDERING[op](left, right))


def _filter(expr: str) -> Step:
    m = _FILTER_RE.match(expr)
    if not m:
        raise JsonPathError(f"unsupported filter {expr!r}")
    path, op, raw = m.groups()
    right = _literal(raw) if op else None

    def keep(item: Any) -> bool:
        found, left = _lookup(item, path)
        return found and (op is None or _compare(left, op, right))

    def step(values: list[Any]) -> list[Any]:
        out: list[Any] = []
        for v in values:
            items = v if isinstance(v, list) else list(v.values()) if isinstance(v, dict) else []
            out.extend(item for item in items if keep(item))
        return out

    return step


def _bracket(inner: str) -> Step:
    inner = inner.strip()
    if inner == "*":
        return _wildcard
    if inner.startswith("?"):
        return _filter(inner)
    if _INDEX_RE.match(inner):
        return _index(int(inner))
    if m := _SLICE_RE.match(inner):
        start, stop = m.groups()
        return _slice(int(start) if start else None, int(stop) if stop else None)
    if inner[:1] in ("'", '"') and inner[-1:] == inner[:1]:
        return _child(inner[1:-1])
    raise JsonPathError(f"unsupported subscript [{inner}]")


def _read_name(expr: str, i: int) -> tuple[str, int]:
    buf: list[str] = []
    while i < len(expr) and expr[i] not in ".[":
        if expr[i] == "\\" and i + 1 < len(expr):
            i += 1
        buf.append(expr[i])
        i += 1
    return "".join(buf), i


def _find_close(expr: str, i: int) -> int:
    depth, quote = 0, ""
    for j in range(i, len(expr)):
        ch = expr[j]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return j
    raise JsonPathError(f"unterminated [ in {expr!r}")


def compile_path(expr: str) -> list[Step]:
    """Compile `.status.conditions[?(@.type=="Ready")].status` (braces and `$` optional)."""
    expr = expr.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1].strip()
    if expr.startswith("$"):
        expr = expr[1:]
    steps: list[Step] = []
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch == ".":
            if expr[i + 1 : i + 2] == "*":
                steps.append(_wildcard)
                i += 2
                continue
            name, i = _read_name(expr, i + 1)
            if name:
                steps.append(_child(name))
        elif ch == "[":
            close = _find_close(expr, i)
            steps.append(_bracket(expr[i + 1 : close]))
            i = close + 1
        else:
            name, i = _read_name(expr, i)
            steps.append(_child(name))
    return steps


def evaluate(expr: str | list[Step], obj: Any) -> list[Any]:
    """All values the expression selects in `obj`, in document order."""
    steps = compile_path(expr) if isinstance(expr, str) else expr
    values = [obj]
    for step in steps:
        values = step(values)
    return values
