"""API errors of the emulator and their Kubernetes `Status` bodies.

Every layer raises `ApiError`; the HTTP layer renders it with `ApiError.status()`. `FieldError`
formats field-level validation failures exactly like apimachinery's `field.Error`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

_TYPE_LABELS = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "FieldValueTypeInvalid": "Invalid value",
}
_NO_VALUE_TYPES = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "FieldValueNotFound"}


def go_value(value: Any) -> str:
    """Format a JSON value as Go's `%v`/`%q` would in an apimachinery error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class FieldError:
    """One field-level error, rendered as `<field>: <Type>: <value>: <detail>`."""

    reason: str
    field: str
    detail: str = ""
    value: Any = None
    path: tuple[str | int, ...] = ()

    def body(self) -> str:
        text = _TYPE_LABELS[self.reason]
        if self.reason not in _NO_VALUE_TYPES:
            text = f"{text}: {go_value(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    def cause(self) -> Json:
        return {"reason": self.reason, "message": self.body(), "field": self.field}


class ApiError(Exception):
    """An error answered to the client as a `Status` object with an HTTP code."""

    def __init__(self, code: int, reason: str, message: str, details: Json | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.warnings: list[str] = []

    def status(self) -> Json:
        body: Json = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del body["reason"]
        if self.details is not None:
            body["details"] = self.details
        return body

    @classmethod
    def not_found(cls, group: str, plural: str, name: str) -> ApiError:
        qualified = f"{plural}.{group}" if group else plural
        details = {"name": name, "group": group, "kind": plural} if group else {"name": name, "kind": plural}
        return cls(404, "NotFound", f'{qualified} "{name}" not found', details)

    @classmethod
    def already_exists(cls, group: str, plural: str, name: str) -> ApiError:
        qualified = f"{plural}.{group}" if group else plural
        details = {"name": name, "group": group, "kind": plural} if group else {"name": name, "kind": plural}
        return cls(409, "AlreadyExists", f'{qualified} "{name}" already exists', details)

    @classmethod
    def conflict(cls, group: str, plural: str, name: str, why: str | None = None) -> ApiError:
        qualified = f"{plural}.{group}" if group else plural
        why = why or ("the object has been modified; please apply your changes to the latest version and try again")
        details = {"name": name, "group": group, "kind": plural} if group else {"name": name, "kind": plural}
        return cls(409, "Conflict", f'Operation cannot be fulfilled on {qualified} "{name}": {why}', details)

    @classmethod
    def invalid(cls, group: str, kind: str, name: str, errors: list[FieldError]) -> ApiError:
        qualified = f"{kind}.{group}" if group else kind
        texts = [str(e) for e in errors]
        summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
        details: Json = {"name": name, "group": group, "kind": kind, "causes": [e.cause() for e in errors]}
        if not group:
            del details["group"]
        return cls(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', details)

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "BadRequest", message)

    @classmethod
    def forbidden(cls, message: str, details: Json | None = None) -> ApiError:
        return cls(403, "Forbidden", message, details)

    @classmethod
    def gone(cls, message: str) -> ApiError:
        return cls(410, "Expired", message)

    @classmethod
    def method_not_allowed(cls) -> ApiError:
        return cls(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    @classmethod
    def no_resource(cls) -> ApiError:
        return cls(404, "NotFound", "the server could not find the requested resource")

    @classmethod
    def unsupported_media_type(cls, media_type: str, accepted: list[str]) -> ApiError:
        return cls(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted)
            if media_type
            else "the request has an unknown content type",
        )

    @classmethod
    def unprocessable(cls, message: str) -> ApiError:
        return cls(422, "Invalid", message)
