"""Request decoding and response encoding: bodies (JSON, YAML, protobuf), query options, media types.

`endpoints.py` uses these to turn an aiohttp request into plain values for `Cluster` and to shape
responses as the real server does (`Status` on error, `Table` for kubectl, `Warning` headers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web
from multidict import CIMultiDict

from .apierrors import ApiError
from .preparing import FIELD_VALIDATION, WriteOptions
from .protobuf import PROTOBUF, decode_protobuf

Json = dict[str, Any]
JSON_TYPES = ("application/json", "")
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml")


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(value: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers: CIMultiDict[str] = CIMultiDict({"Content-Type": "application/json", "Cache-Control": "no-cache, private"})
    for warning in warnings or ():
        headers.add("Warning", "299 - " + json.dumps(warning))
    return web.Response(body=dumps(value), status=status, headers=headers)


async def read_body(request: web.Request, *, required: bool = True) -> Any:
    """The request body as JSON values, whatever the media type it came in."""
    raw = await request.read()
    if not raw:
        if required:
            raise ApiError.bad_request("the body of the request is empty")
        return {}
    media = request.content_type
    try:
        if media in YAML_TYPES:
            return yaml.safe_load(raw)
        if media == PROTOBUF:
            return decode_protobuf(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as e:
        raise ApiError.bad_request(f"the body of the request could not be decoded: {e}") from e


def wants(request: web.Request, as_kind: str) -> bool:
    """Does the Accept header ask for `as=<as_kind>` (e.g. Table, PartialObjectMetadataList)?"""
    accept = request.headers.get("Accept", "").replace(" ", "")
    return any(f"as={as_kind}" in part.split(";") for part in accept.split(","))


def is_true(value: str | None) -> bool:
    return value in ("true", "1", "True")


def write_options(request: web.Request, subresource: str | None) -> WriteOptions:
    query = request.query
    validation = query.get("fieldValidation", "Warn") or "Warn"
    if validation not in FIELD_VALIDATION:
        raise ApiError.bad_request(f"fieldValidation parameter unsupported: {validation}")
    dry_run = query.getall("dryRun", [])
    if any(v != "All" for v in dry_run):
        raise ApiError.bad_request(f"unsupported dry run value: {dry_run}")
    return WriteOptions(subresource=subresource, field_validation=validation, dry_run=bool(dry_run))


def int_param(request: web.Request, name: str, default: int = 0) -> int:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(str(raw))
    except ValueError as e:
        raise ApiError.bad_request(f"invalid value for {name}: {raw}") from e


@dataclass(frozen=True)
class RequestRecord:
    """What a client asked, kept for tests and debugging (bounded history)."""

    method: str
    path: str
    query: str
    content_type: str
    accept: str
    user: str


def record(request: web.Request) -> RequestRecord:
    auth = request.headers.get("Authorization", "")
    user = auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else ""
    return RequestRecord(
        request.method,
        request.path,
        request.query_string,
        request.content_type,
        request.headers.get("Accept", ""),
        user,
    )


def delete_options(request: web.Request, body: Any) -> Json:
    options: Json = dict(body) if isinstance(body, dict) else {}
    for name in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
        if name in request.query:
            options[name] = request.query[name]
    if options.get("orphanDependents") in ("true", True):
        options["orphanDependents"] = True
    return options
