"""The core and apps objects Ringpilot touches: Namespaces, Deployments, ConfigMaps and Events.

Events have deterministic names (`event_manifest`), so posting one again is a 409 the caller ignores.

Each call goes through `call_json` (controller/kube/client.py): decoded JSON back, `KubeError` on
failure. A caller that needs its own error type (the kubernetes plane raises `PlaneError`) passes
`on_error`, which turns each `KubeError` into what it raises.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from controller.kube.client import Json, call_json
from controller.kube.errors import KubeError

_JSON_PATCH = "application/json-patch+json"
_STRATEGIC = "application/strategic-merge-patch+json"


def _same(error: KubeError) -> Exception:
    return error


def event_name(involved_name: str, *identity: object) -> str:
    """A deterministic Event name: the involved object's name and a digest of what makes the Event unique.

    Posting the same Event twice (a restarted controller repeating a reconcile whose status patch was
    lost) then names the same object, which the API server refuses with 409 instead of storing it twice.
    """
    digest = hashlib.sha256("\x1f".join(str(part) for part in identity).encode()).hexdigest()[:16]
    return f"{involved_name[:200]}.{digest}"


def event_manifest(
    involved: Json, reason: str, message: str, type_: str, component: str, at: datetime | None = None
) -> Json:
    """A core/v1 Event on `involved` (a full object), named by `event_name` from its uid, generation and content."""
    meta = involved.get("metadata") or {}
    stamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    name = event_name(str(meta.get("name")), meta.get("uid"), meta.get("generation"), reason, type_, message)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": meta.get("namespace") or "default"},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            **({"uid": meta["uid"]} if meta.get("uid") else {}),
            **({"resourceVersion": meta["resourceVersion"]} if meta.get("resourceVersion") else {}),
        },
        "reason": reason,
        "message": message[:1024],
        "type": type_,
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class CoreApps:
    """The handful of core/apps calls we make, each returning decoded JSON."""

    def __init__(self, api_client: client.ApiClient, on_error: Callable[[KubeError], Exception] = _same) -> None:
        self.api_client = api_client
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.on_error = on_error

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Json:
        try:
            return await call_json(what, fn, *args, **kwargs)
        except KubeError as error:
            translated = self.on_error(error)
            if translated is error:
                raise
            raise translated from error

    async def list_namespaces(self, label_selector: str | None = None, *, limit: int | None = None) -> list[Json]:
        kwargs: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
        if limit is not None:
            kwargs["limit"] = limit
        listing = await self._call("list Namespaces", self.core.list_namespace, **kwargs)
        return list(listing.get("items") or [])

    async def list_deployments(self, namespace: str, label_selector: str) -> list[Json]:
        listing = await self._call(
            f"list Deployments in {namespace}",
            self.apps.list_namespaced_deployment,
            namespace,
            label_selector=label_selector,
        )
        return list(listing.get("items") or [])

    async def list_deployments_everywhere(self, label_selector: str) -> list[Json]:
        listing = await self._call(
            "list Deployments", self.apps.list_deployment_for_all_namespaces, label_selector=label_selector
        )
        return list(listing.get("items") or [])

    async def list_config_maps(self, namespace: str) -> list[Json]:
        listing = await self._call(f"list ConfigMaps in {namespace}", self.core.list_namespaced_config_map, namespace)
        return list(listing.get("items") or [])

    async def read_deployment(self, namespace: str, name: str) -> Json:
        return await self._call(
            f"read Deployment {namespace}/{name}", self.apps.read_namespaced_deployment, name, namespace
        )

    async def patch_deployment(self, namespace: str, name: str, patch: Json) -> Json:
        """Strategic merge patch."""
        return await self._call(
            f"patch Deployment {namespace}/{name}",
            self.apps.patch_namespaced_deployment,
            name,
            namespace,
            patch,
            _content_type=_STRATEGIC,
        )

    async def create_deployment(self, namespace: str, manifest: Json) -> Json:
        name = manifest.get("metadata", {}).get("name")
        return await self._call(
            f"create Deployment {namespace}/{name}",
            self.apps.create_namespaced_deployment,
            namespace,
            manifest,
        )

    async def read_config_map(self, namespace: str, name: str) -> Json:
        return await self._call(
            f"read ConfigMap {namespace}/{name}", self.core.read_namespaced_config_map, name, namespace
        )

    async def set_config_map_data(self, namespace: str, name: str, data: dict[str, str]) -> Json:
        """Replace the whole `data` of a ConfigMap (JSON patch `add`, which replaces an existing member)."""
        return await self._call(
            f"patch ConfigMap {namespace}/{name}",
            self.core.patch_namespaced_config_map,
            name,
            namespace,
            [{"op": "add", "path": "/data", "value": data}],
            _content_type=_JSON_PATCH,
        )

    async def create_config_map(self, namespace: str, manifest: Json) -> Json:
        name = manifest.get("metadata", {}).get("name")
        return await self._call(
            f"create ConfigMap {namespace}/{name}",
            self.core.create_namespaced_config_map,
            namespace,
            manifest,
        )

    async def create_event(self, namespace: str, body: Json) -> Json:
        involved = body.get("involvedObject") or {}
        return await self._call(
            f"post Event on {involved.get('kind')} {namespace}/{involved.get('name')}",
            self.core.create_namespaced_event,
            namespace,
            body,
        )

    async def post_event_once(self, body: Json) -> bool:
        """Create the Event `body` (named by `event_manifest`); False when it was posted already.

        An Event of that name posted from the same version of the object is this one again (a reconcile
        repeated after a crash): nothing changes. One posted from another version is the same news again,
        so its `count` goes up, as the API server's own Event aggregation does.
        """
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        try:
            await self.create_event(namespace, body)
            return True
        except KubeError as error:
            if not error.conflict:
                raise
        existing = await self._call(f"read Event {namespace}/{name}", self.core.read_namespaced_event, name, namespace)
        version = (body.get("involvedObject") or {}).get("resourceVersion")
        if version is None or (existing.get("involvedObject") or {}).get("resourceVersion") == version:
            return False
        bump = {
            "count": int(existing.get("count") or 1) + 1,
            "lastTimestamp": body.get("lastTimestamp"),
            "involvedObject": {"resourceVersion": version},
        }
        await self._call(f"patch Event {namespace}/{name}", self.core.patch_namespaced_event, name, namespace, bump)
        return False

    async def list_events(self, namespace: str, field_selector: str | None = None) -> list[Json]:
        """Events in `namespace`, e.g. `involvedObject.name=<name>` as the field selector."""
        kwargs: dict[str, Any] = {"field_selector": field_selector} if field_selector else {}
        listing = await self._call(f"list Events in {namespace}", self.core.list_namespaced_event, namespace, **kwargs)
        return list(listing.get("items") or [])
