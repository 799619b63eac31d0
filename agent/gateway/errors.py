"""The gateway's one error envelope: `{"error": {"code", "message", "field"}}` with the HTTP status.

`GatewayError` is raised by routes and dependencies; `install_error_handlers` turns it, FastAPI's
request-validation errors (422, naming the field) and Starlette's own HTTP errors (unknown path,
wrong method) into that envelope, so every refusal a client sees has the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "TooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    503: "Unavailable",
}


class GatewayError(Exception):
    """A refusal with its HTTP status, a CamelCase code, a sentence and (when one is to blame) the field."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "Error")
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


def not_found(what: str) -> GatewayError:
    return GatewayError(404, f"{what} not found")


def unauthorized(message: str) -> GatewayError:
    return GatewayError(401, message, headers={"WWW-Authenticate": "Bearer"})


def envelope(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def _field(loc: Any) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    if not parts:
        return None
    out = parts[0]
    for part in parts[1:]:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the envelope (see the module docstring)."""

    @app.exception_handler(GatewayError)
    async def _gateway(_: Request, error: GatewayError) -> JSONResponse:
        body = envelope(error.code, error.message, error.field)
        return JSONResponse(body, status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
        field = _field(first.get("loc", ()))
        message = "; ".join(f"{_field(p.get('loc', ())) or 'body'}: {p.get('msg')}" for p in problems[:5])
        return JSONResponse(envelope("Invalid", message, field), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(error.status_code, "Error")
        return JSONResponse(
            envelope(code, str(error.detail)), status_code=error.status_code, headers=dict(error.headers or {})
        )
