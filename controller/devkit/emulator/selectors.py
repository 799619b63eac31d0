"""Label and field selectors with the Kubernetes query syntax.

`parse_label_selector()` and `parse_field_selector()` raise `ApiError` (400) on bad input; list and
watch requests use the resulting `Selector.matches(obj)`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .apierrors import ApiError

Json = dict[str, Any]

_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_RE = re.compile(f"^{_NAME}$")
_PREFIX_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_EXISTS_RE = re.compile(rf"^(!?)\s*({_KEY})$")
_EQUALITY_RE = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*(\S*)$")
_SET_RE = re.compile(rf"^({_KEY})\s+(in|notin)\s*\((.*)\)$")
_ORDER_RE = re.compile(rf"^({_KEY})\s*([<>])\s*(-?\d+)$")
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

Predicate = Callable[[Json], bool]


@dataclass(frozen=True)
class Selector:
    """A conjunction of predicates over an object; empty means everything."""

    text: str
    predicates: tuple[Predicate, ...]

    def matches(self, obj: Json) -> bool:
        return all(p(obj) for p in self.predicates)

    def __bool__(self) -> bool:
        return bool(self.predicates)


def _bad(message: str) -> ApiError:
    return ApiError.bad_request(f"unable to parse requirement: {message}")


def _check_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _PREFIX_RE.match(prefix)):
        raise _bad(f'key: Invalid value: "{key}": prefix part must be a lowercase RFC 1123 subdomain')
    if len(name) > 63 or not _NAME_RE.match(name):
        raise _bad(
            f'key: Invalid value: "{key}": name part must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )


def _check_value(key: str, value: str) -> None:
    if value and (len(value) > 63 or not _NAME_RE.match(value)):
        raise _bad(f'values[0][{key}]: Invalid value: "{value}": {_VALUE_MSG}')


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _labels(obj: Json) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels if isinstance(labels, dict) else {}


def _label_requirement(term: str) -> Predicate:
    if m := _SET_RE.match(term):
        key, op, raw = m.groups()
        _check_key(key)
        values = {v.strip() for v in raw.split(",")}
        for v in values:
            _check_value(key, v)
        if op == "in":
            return lambda o: _labels(o).get(key) in values
        return lambda o: _labels(o).get(key) not in values
    if m := _EQUALITY_RE.match(term):
        key, op, value = m.groups()
        _check_key(key)
        _check_value(key, value)
        if op == "!=":
            return lambda o: _labels(o).get(key) != value
        return lambda o: _labels(o).get(key) == value
    if m := _ORDER_RE.match(term):
        key, op, raw_number = m.groups()
        _check_key(key)
        number = int(raw_number)

        def compare(o: Json) -> bool:
            val = _labels(o).get(key)
            if val is None or not re.fullmatch(r"-?\d+", val):
                return False
            return int(val) > number if op == ">" else int(val) < number

        return compare
    if m := _EXISTS_RE.match(term):
        negate, key = m.groups()
        _check_key(key)
        if negate:
            return lambda o: key not in _labels(o)
        return lambda o: key in _labels(o)
    raise _bad(f"found '{term}', expected: key, '!', 'in', 'notin', '=', '==', '!=', '<' or '>'")


def parse_label_selector(text: str | None) -> Selector:
    """Parse `a=b,c!=d,e in (f,g),!h` into a `Selector` over `metadata.labels`."""
    if not text or not text.strip():
        return Selector("", ())
    return Selector(text, tuple(_label_requirement(t) for t in _split_top_level(text)))


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, buf, escaped = [], [], False
    for ch in text:
        if escaped:
            buf.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def field_value(obj: Json, path: str) -> str:
    """The string form of a dotted field path, as the field-selector machinery compares it."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def _field_requirement(term: str, whole: str) -> Predicate:
    for op in ("!=", "==", "="):
        idx = term.find(op)
        if idx > 0:
            path, value = term[:idx].strip(), _unescape(term[idx + len(op) :].strip())
            if op == "!=":
                return lambda o: field_value(o, path) != value
            return lambda o: field_value(o, path) == value
    raise ApiError.bad_request(f"invalid selector: '{whole}'; can't understand '{term}'")


def parse_field_selector(text: str | None) -> Selector:
    """Parse `metadata.name=x,involvedObject.kind!=Pod` into a `Selector` over dotted paths."""
    if not text or not text.strip():
        return Selector("", ())
    terms = [t for t in _split_unescaped(text, ",") if t.strip()]
    return Selector(text, tuple(_field_requirement(t, text) for t in terms))


def _equals(key: str, value: str) -> Predicate:
    return lambda o: _labels(o).get(key) == value


def _expression(expr: Json) -> Predicate:
    key, op = str(expr.get("key", "")), expr.get("operator")
    values = {str(v) for v in expr.get("values") or []}
    if op == "In":
        return lambda o: _labels(o).get(key) in values
    if op == "NotIn":
        return lambda o: _labels(o).get(key) not in values
    if op == "Exists":
        return lambda o: key in _labels(o)
    if op == "DoesNotExist":
        return lambda o: key not in _labels(o)
    raise ApiError.bad_request(f'"{op}" is not a valid label selector operator')


def from_label_selector(selector: Any) -> Selector:
    """A `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`) as a `Selector`; empty matches all."""
    if not isinstance(selector, dict):
        return Selector("", ())
    predicates: list[Predicate] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        predicates.append(_equals(str(key), str(value)))
    predicates += [_expression(e) for e in selector.get("matchExpressions") or [] if isinstance(e, dict)]
    return Selector(json.dumps(selector, sort_keys=True), tuple(predicates))
