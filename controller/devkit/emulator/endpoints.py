"""HTTP routing of the Kubernetes REST paths onto `Cluster` verbs, discovery and OpenAPI.

`ApiEndpoints.handle()` is the single aiohttp handler of the server: it parses `/api/...` and
`/apis/...` paths (namespaced, cluster-scoped, subresources), dispatches by HTTP method and answers
errors as `Status` objects. `server.py` mounts it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import discovery
from .accessgate import AccessGate
from .admissionchain import AdmittedWrites
from .apierrors import ApiError
from .authn import AuthConfig, UserInfo
from .negotiation import (
    RequestRecord,
    delete_options,
    int_param,
    is_true,
    json_response,
    read_body,
    record,
    wants,
    write_options,
)
from .patching import json_patch, merge_patch, strategic_merge
from .preparing import WriteOptions
from .resourcetypes import REVIEWS, ResourceType
from .reviews import answer_review, request_token
from .selectors import parse_field_selector, parse_label_selector
from .tables import partial_metadata, to_table
from .verbs import APPLY, PATCH_TYPES, Cluster
from .watching import DEFAULT_TIMEOUT_SECONDS, WatchRequest, json_line, serve_watch
from .webhooks import ServicePorts, WebhookCaller

Json = dict[str, Any]
log = logging.getLogger(__name__)
_RETURNS_OBJECT = {("", "pods"), ("", "namespaces"), ("", "services")}


@dataclass(frozen=True)
class Target:
    """A parsed resource path: which resource, namespace, object and subresource."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


class ApiEndpoints:
    """The emulator's HTTP surface over one `Cluster`."""

    def __init__(
        self,
        cluster: Cluster,
        server_address: Callable[[], str],
        bookmark_interval: float = 60.0,
        history: int = 1000,
        *,
        auth: AuthConfig | None = None,
        service_ports: ServicePorts | None = None,
    ) -> None:
        self.cluster = cluster
        self.server_address = server_address
        self.bookmark_interval = bookmark_interval
        self.requests: deque[RequestRecord] = deque(maxlen=history)
        self.gate = AccessGate(auth, cluster.store)
        self.writes = AdmittedWrites(cluster, WebhookCaller(service_ports))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(record(request))
        try:
            user = self.gate.admit_request(request)
            return await self._route(request, user)
        except ApiError as e:
            return json_response(e.status(), e.code, e.warnings)
        except Exception as e:
            log.exception("Failed to serve %s %s", request.method, request.path_qs)
            error = ApiError(500, "InternalError", f"Internal error occurred: {e}")
            return json_response(error.status(), 500)

    async def _route(self, request: web.Request, user: UserInfo) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        registry = self.cluster.registry
        if not parts or parts[0] in ("healthz", "livez", "readyz"):
            return web.Response(text="ok")
        if parts == ["version"]:
            return json_response(discovery.version_info())
        if parts[0] == "openapi":
            return self._openapi(parts)
        if parts == ["api"]:
            return json_response(discovery.api_versions(self.server_address()))
        if parts == ["apis"]:
            return json_response(discovery.api_group_list(registry))
        if parts[0] == "apis" and len(parts) == 2:
            found = discovery.api_group(registry, parts[1])
            return self._found(found)
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError.no_resource()
        if not rest:
            return self._found(discovery.resource_list(registry, group, version))
        target = self._locate(group, version, rest)
        return await self._dispatch(request, target, user)

    def _found(self, doc: Json | None) -> web.Response:
        if doc is None:
            raise ApiError.no_resource()
        return json_response(doc)

    def _openapi(self, parts: list[str]) -> web.Response:
        registry = self.cluster.registry
        if parts == ["openapi", "v3"]:
            return json_response(discovery.openapi_index(registry))
        if parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            is_group = parts[2] == "apis" and len(parts) == 5
            group, version = (parts[3], parts[4]) if is_group else ("", parts[3])
            return self._found(discovery.openapi_group_version(registry, group, version))
        raise ApiError.no_resource()

    def _locate(self, group: str, version: str, rest: list[str]) -> Target:
        lookup = self.cluster.registry.lookup
        if rest[0] == "namespaces" and len(rest) >= 3:
            rt = lookup(group, version, rest[2])
            if rt is not None and rt.namespaced and len(rest) <= 5:
                return self._checked(Target(rt, rest[1], _at(rest, 3), _at(rest, 4)))
            if not group and len(rest) == 3 and rest[2] in ("status", "finalize"):
                ns_rt = lookup("", "v1", "namespaces")
                assert ns_rt is not None
                return Target(ns_rt, None, rest[1], rest[2])
            raise ApiError.no_resource()
        rt = lookup(group, version, rest[0])
        if rt is None or len(rest) > 3 or (rt.namespaced and len(rest) > 1):
            raise ApiError.no_resource()
        return self._checked(Target(rt, None, _at(rest, 1), _at(rest, 2)))

    @staticmethod
    def _checked(target: Target) -> Target:
        if target.subresource is not None and target.subresource not in target.rt.subresources:
            raise ApiError.no_resource()
        return target

    async def _dispatch(self, request: web.Request, target: Target, user: UserInfo) -> web.StreamResponse:
        method, cluster, writes = request.method, self.cluster, self.writes
        rt, namespace, name, sub = target.rt, target.namespace, target.name, target.subresource
        if rt.key in REVIEWS:
            if method != "POST" or name is not None:
                raise ApiError.method_not_allowed()
            return json_response(answer_review(self.gate, rt, namespace, await read_body(request), user), 201)
        if sub == "token":
            if method != "POST" or namespace is None or name is None:
                raise ApiError.method_not_allowed()
            return json_response(
                request_token(self.gate, namespace, name, await read_body(request, required=False)), 201
            )
        if method == "GET":
            if is_true(request.query.get("watch")):
                return await self._watch(request, target)
            if name is None:
                return self._list(request, target)
            if sub == "scale":
                return json_response(cluster.get_scale(rt, namespace, name))
            return self._one(request, rt, cluster.get(rt, namespace, name))
        if sub is not None and method not in ("PUT", "PATCH"):
            raise ApiError.method_not_allowed()
        opts = write_options(request, sub)
        if method == "POST" and name is None and (namespace is not None or not rt.namespaced):
            created = await writes.create(rt, namespace, await read_body(request), opts, user)
            return json_response(created, 201, opts.warnings)
        if method == "DELETE":
            options = delete_options(request, await read_body(request, required=False))
            if name is None:
                labels, fields = self._selectors(request)
                return json_response(cluster.delete_collection(rt, namespace, labels, fields, opts))
            obj, removed = await writes.delete(rt, namespace, name, options, opts, user)
            if removed and not rt.custom and rt.key not in _RETURNS_OBJECT:
                details = {"name": name, "group": rt.group, "kind": rt.plural, "uid": obj["metadata"].get("uid")}
                return json_response(
                    {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
                )
            return json_response(obj)
        if name is None:
            raise ApiError.method_not_allowed()
        if method == "PUT":
            body = await read_body(request)
            if sub == "scale":
                scaled = cluster.update_scale(rt, namespace, name, body, opts)
                return json_response(scaled, 200, opts.warnings)
            if sub == "finalize":
                opts.subresource = None
            return json_response(await writes.update(rt, namespace, name, body, opts, user), 200, opts.warnings)
        if method == "PATCH":
            return await self._patch(request, target, opts, user)
        raise ApiError.method_not_allowed()

    async def _patch(self, request: web.Request, target: Target, opts: WriteOptions, user: UserInfo) -> web.Response:
        rt, namespace, name = target.rt, target.namespace, target.name
        assert name is not None
        patch_type = request.content_type
        if patch_type not in PATCH_TYPES:
            raise ApiError.unsupported_media_type(patch_type, list(PATCH_TYPES))
        if patch_type == APPLY and not request.query.get("fieldManager"):
            raise ApiError.bad_request("PATCH requests with apply-patch require fieldManager to be set")
        body = await read_body(request)
        if target.subresource == "scale":
            current = self.cluster.get_scale(rt, namespace, name)
            merge = {"application/json-patch+json": json_patch, "application/merge-patch+json": merge_patch}.get(
                patch_type, strategic_merge
            )
            scaled = self.cluster.update_scale(rt, namespace, name, merge(current, body), opts)
            return json_response(scaled, 200, opts.warnings)
        obj, created = await self.writes.patch(rt, namespace, name, patch_type, body, opts, user)
        return json_response(obj, 201 if created else 200, opts.warnings)

    def _selectors(self, request: web.Request) -> tuple[Any, Any]:
        return (
            parse_label_selector(request.query.get("labelSelector")),
            parse_field_selector(request.query.get("fieldSelector")),
        )

    def _one(self, request: web.Request, rt: ResourceType, obj: Json) -> web.Response:
        if wants(request, "Table"):
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return json_response(to_table(rt, [obj], meta, request.query.get("includeObject", "Metadata")))
        if wants(request, "PartialObjectMetadata"):
            return json_response(partial_metadata(obj))
        return json_response(obj)

    def _list(self, request: web.Request, target: Target) -> web.Response:
        labels, fields = self._selectors(request)
        listing = self.cluster.list(
            target.rt, target.namespace, labels, fields, int_param(request, "limit"), request.query.get("continue")
        )
        if wants(request, "Table"):
            include = request.query.get("includeObject", "Metadata")
            return json_response(to_table(target.rt, listing["items"], listing["metadata"], include))
        if wants(request, "PartialObjectMetadataList"):
            return json_response(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": listing["metadata"],
                    "items": [partial_metadata(o) for o in listing["items"]],
                }
            )
        return json_response(listing)

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        labels, fields = self._selectors(request)
        if target.name is not None:
            terms = filter(None, [fields.text, f"metadata.name={target.name}"])
            fields = parse_field_selector(",".join(terms))
        rt, cluster = target.rt, self.cluster
        watch = WatchRequest(
            rt=rt,
            namespace=target.namespace,
            labels=labels,
            fields=fields,
            resource_version=request.query.get("resourceVersion"),
            timeout_seconds=float(int_param(request, "timeoutSeconds")) or DEFAULT_TIMEOUT_SECONDS,
            bookmarks=is_true(request.query.get("allowWatchBookmarks")),
            send_initial_events=is_true(request.query.get("sendInitialEvents")),
        )
        table = wants(request, "Table")
        include = request.query.get("includeObject", "Metadata")

        def encode(event_type: str, obj: Json) -> bytes:
            rendered = cluster.render(obj, rt)
            if table:
                meta = {"resourceVersion": rendered["metadata"].get("resourceVersion", "")}
                rendered = to_table(rt, [rendered], meta, include)
            return json_line(event_type, rendered)

        return await serve_watch(request, cluster.store, watch, encode, self.bookmark_interval)


def _at(parts: list[str], index: int) -> str | None:
    return parts[index] if len(parts) > index else None
