"""ObjectMeta rules: name and label validation, generated names, timestamps and system fields.

Called by `preparing.py` on every create and update; the messages match apimachinery's
validation so clients show the same errors as against a real API server.
"""

from __future__ import annotations

import datetime
import random
import re
import uuid
from typing import Any

from .apierrors import FieldError

Json = dict[str, Any]

KNOWN_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
SYSTEM_FIELDS = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")

_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_KEY_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str) -> str:
    """`generateName` + 5 random characters, as the real server does."""
    return prefix[:58] + "".join(random.choice(_ALPHABET) for _ in range(5))


def validate_name(
    name: Any, *, label: bool = False, path: str = "metadata.name", segment: bool = False
) -> list[FieldError]:
    """A DNS-1123 subdomain (or label, for namespaces; or path segment, for RBAC objects) name check."""
    if not isinstance(name, str) or not name:
        return [FieldError("FieldValueRequired", path, "name or generateName is required")]
    if segment:
        if name in (".", ".."):
            return [FieldError("FieldValueInvalid", path, f"may not be '{name}'", name)]
        bad = next((c for c in ("/", "%") if c in name), None)
        return [FieldError("FieldValueInvalid", path, f"may not contain '{bad}'", name)] if bad else []
    limit, regex, msg = (63, _LABEL_RE, LABEL_MSG) if label else (253, _SUBDOMAIN_RE, SUBDOMAIN_MSG)
    errors = []
    if len(name) > limit:
        errors.append(FieldError("FieldValueInvalid", path, f"must be no more than {limit} characters", name))
    if not regex.match(name):
        errors.append(FieldError("FieldValueInvalid", path, msg, name))
    return errors


def _validate_key(key: str, path: str) -> list[FieldError]:
    prefix, slash, name = key.rpartition("/")
    errors = []
    if slash and (len(prefix) > 253 or not _SUBDOMAIN_RE.match(prefix)):
        errors.append(FieldError("FieldValueInvalid", path, "prefix part " + SUBDOMAIN_MSG, key))
    if len(name) > 63 or not _QUALIFIED_RE.match(name):
        errors.append(FieldError("FieldValueInvalid", path, _KEY_MSG, key))
    return errors


def validate_meta(meta: Json) -> list[FieldError]:
    """Label keys and values, annotation keys, finalizer names."""
    errors: list[FieldError] = []
    for field in ("labels", "annotations"):
        mapping = meta.get(field)
        if mapping is None:
            continue
        if not isinstance(mapping, dict):
            errors.append(FieldError("FieldValueInvalid", f"metadata.{field}", "must be a map", mapping))
            continue
        for key, value in mapping.items():
            errors += _validate_key(key, f"metadata.{field}")
            if not isinstance(value, str):
                errors.append(FieldError("FieldValueInvalid", f"metadata.{field}", "must be a string", value))
            elif field == "labels" and value and (len(value) > 63 or not _QUALIFIED_RE.match(value)):
                errors.append(FieldError("FieldValueInvalid", "metadata.labels", _VALUE_MSG, value))
    finalizers = meta.get("finalizers")
    if finalizers is not None and (
        not isinstance(finalizers, list) or not all(isinstance(f, str) and f for f in finalizers)
    ):
        errors.append(FieldError("FieldValueInvalid", "metadata.finalizers", "must be a list of names", finalizers))
    return errors


def prune_meta(meta: Json) -> list[str]:
    """Drop unknown metadata fields; return their paths for `fieldValidation` warnings."""
    unknown = [k for k in meta if k not in KNOWN_FIELDS]
    for key in unknown:
        del meta[key]
    meta.pop("selfLink", None)
    meta.pop("managedFields", None)
    return [f"metadata.{k}" for k in unknown]


def finalizers_added(old: Json, new: Json) -> list[str]:
    before = set((old.get("metadata") or {}).get("finalizers") or [])
    return [f for f in (new.get("metadata") or {}).get("finalizers") or [] if f not in before]


def rfc3339_age(stamp: Any) -> str:
    """Kubernetes' `HumanDuration` of the time since an RFC 3339 timestamp (`5m`, `3h20m`, `2d`)."""
    if not isinstance(stamp, str):
        return "<unknown>"
    try:
        then = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    return human_duration((datetime.datetime.now(datetime.UTC) - then).total_seconds())


def human_duration(seconds_f: float) -> str:
    seconds = int(seconds_f)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"
