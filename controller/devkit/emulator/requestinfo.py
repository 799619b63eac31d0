"""What a request asks to do, in the terms authorisers use: verb, API group, resource, name, or a path.

`request_attributes()` follows apiserver's RequestInfoFactory (discovery paths are non-resource requests, a
namespace's own path carries its name as the namespace); `forbidden()` words a 403 as kube-apiserver does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .apierrors import ApiError
from .authn import UserInfo

Json = dict[str, Any]
_NAMESPACE_SUBRESOURCES = {"status", "finalize"}
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class Attributes:
    """One authorisation question: may `user` do `verb` on this resource (or non-resource `path`)?"""

    user: UserInfo
    verb: str
    resource_request: bool
    path: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def request_attributes(user: UserInfo, request: web.Request) -> Attributes:
    """The attributes of an HTTP request, as kube-apiserver derives them before authorising it."""
    path = request.path
    parts = [p for p in path.split("/") if p]
    method = request.method.upper()
    if len(parts) < 3 or parts[0] not in ("api", "apis") or (parts[0] == "apis" and len(parts) < 4):
        return Attributes(user, method.lower(), False, path=path)
    group = "" if parts[0] == "api" else parts[1]
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    version = parts[1] if parts[0] == "api" else parts[2]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = "/".join(rest[2:]) if len(rest) > 2 else ""
    watching = request.query.get("watch") in ("true", "1", "True")
    if method in ("GET", "HEAD"):
        verb = "watch" if watching else ("get" if name else "list")
    elif method == "DELETE" and not name:
        verb = "deletecollection"
    else:
        verb = _VERBS.get(method, method.lower())
    return Attributes(
        user,
        verb,
        True,
        path=path,
        api_group=group,
        api_version=version,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
    )


def forbidden_message(attrs: Attributes) -> str:
    """`User "u" cannot <verb> resource "r" in API group "g" in the namespace "n"` (or a path)."""
    user = attrs.user.username
    if not attrs.resource_request:
        return f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}" {where}'


def forbidden(attrs: Attributes, reason: str = "") -> ApiError:
    """The 403 `Status` kube-apiserver answers when authorisation says no."""
    text = forbidden_message(attrs)
    if reason:
        text = f"{text}: {reason}"
    if not attrs.resource_request or not attrs.resource:
        return ApiError.forbidden(f"forbidden: {text}", {})
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    details: Json = {"kind": attrs.resource}
    if attrs.api_group:
        details["group"] = attrs.api_group
    if attrs.name:
        details = {"name": attrs.name, **details}
        return ApiError.forbidden(f'{qualified} "{attrs.name}" is forbidden: {text}', details)
    return ApiError.forbidden(f"{qualified} is forbidden: {text}", details)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")
