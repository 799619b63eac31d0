"""The Kubernetes API calls of the kubernetes plane, async and with errors classified once.

Wraps the official (blocking) client: each call runs in a worker thread, returns plain JSON dicts
(`_preload_content=False`, no model deserialization, which matters for lists of thousands), and turns
every failure into `PlaneError`: 400/404/409/422 and other 4xx permanent; 429, 5xx and
connection errors transient.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controller.planes.base import PlaneError

Json = dict[str, Any]

_TRANSIENT_STATUSES = {408, 429}
_JSON_PATCH = "application/json-patch+json"
_STRATEGIC = "application/strategic-merge-patch+json"


class KubeError(PlaneError):
    """A failed API call; `status` is the HTTP status (0 when no response came back)."""

    def __init__(self, message: str, *, status: int, transient: bool) -> None:
        self.status = status
        super().__init__(message, transient=transient)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


def _api_message(error: ApiException) -> str:
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(error.reason or "no reason given")


def classify_api_error(error: BaseException, what: str) -> KubeError:
    """The `PlaneError` for a failed call doing `what` (e.g. "patch Deployment ring-0-lab/web")."""
    if isinstance(error, ApiException):
        status = int(error.status or 0)
        transient = status == 0 or status >= 500 or status in _TRANSIENT_STATUSES
        return KubeError(f"Could not {what}: {status} {_api_message(error)}", status=status, transient=transient)
    return KubeError(f"Could not {what}: {type(error).__name__}: {error}", status=0, transient=True)


class KubeApi:
    """The handful of calls the plane makes, each returning decoded JSON."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Json:
        def blocking() -> Json:
            response = fn(*args, _preload_content=False, **kwargs)
            try:
                data = response.data
            finally:
                response.release_conn()
            return json.loads(data) if data else {}

        try:
            return await asyncio.to_thread(blocking)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            raise classify_api_error(error, what) from error

    async def list_namespaces(self, label_selector: str) -> list[Json]:
        listing = await self._call("list Namespaces", self.core.list_namespace, label_selector=label_selector)
        return list(listing.get("items") or [])

    async def list_deployments(self, namespace: str, label_selector: str) -> list[Json]:
        listing = await self._call(
            f"list Deployments in {namespace}",
            self.apps.list_namespaced_deployment,
            namespace,
            label_selector=label_selector,
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
