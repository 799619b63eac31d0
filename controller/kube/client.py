"""Credentials and the async client for Ringpilot's custom resources, over the official `kubernetes` client.

The official client blocks; `call_json` runs one call in a thread, decodes the raw JSON (no model
deserialization, which matters for lists of thousands) and turns every failure into `KubeError`. It is
the only place that does so: `CustomObjects` here and `CoreApps` (controller/kube/coreapps.py) use it.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from controller.api.group import GROUP, VERSION
from controller.api.kinds import KindInfo, by_kind
from controller.api.meta import CustomResource
from controller.kube.errors import TRANSPORT_ERRORS, KubeError, classify_api_error

R = TypeVar("R", bound=CustomResource)  # type: ignore[type-arg]
Json = dict[str, Any]

ApiClient = client.ApiClient
Configuration = client.Configuration
#: What reading this process's credentials raises when there are none (no kubeconfig, not in a pod).
CREDENTIAL_ERRORS = (ConfigException, OSError, TypeError)

__all__ = [
    "CREDENTIAL_ERRORS",
    "ApiClient",
    "ApiException",
    "Configuration",
    "CustomObjects",
    "Json",
    "KubeError",
    "api_client_from_environment",
    "call_json",
    "configuration_from_environment",
]


def configuration_from_environment() -> client.Configuration:
    """This process's credentials: in-cluster in a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration)
    return configuration


def api_client_from_environment() -> client.ApiClient:
    """An ApiClient with this process's own credentials (see `configuration_from_environment`)."""
    return client.ApiClient(configuration_from_environment())


async def call_json(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Json:
    """Run one blocking call of the official client in a thread; its decoded JSON, or `KubeError`."""

    def blocking() -> Json:
        response = fn(*args, _preload_content=False, **kwargs)
        try:
            data = response.data
        finally:
            response.release_conn()
        decoded: Json = json.loads(data) if data else {}
        return decoded

    try:
        return await asyncio.to_thread(blocking)
    except (ApiException, *TRANSPORT_ERRORS) as error:
        raise classify_api_error(error, what) from error


def _items(listing: Json) -> list[Json]:
    return list(listing.get("items") or [])


class CustomObjects:
    """Create, read, list and patch Ringpilot objects; `find` and `find_raw` answer None for a 404."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api = client.CustomObjectsApi(api_client)

    async def create(self, resource: CustomResource, namespace: str) -> Json:  # type: ignore[type-arg]
        return await self.create_raw(by_kind(resource.kind), namespace, resource.to_wire())

    async def create_raw(self, info: KindInfo, namespace: str, body: Json) -> Json:
        name = (body.get("metadata") or {}).get("name") or "(generated)"
        return await call_json(
            f"create {info.kind} {namespace}/{name}",
            self.api.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            info.plural,
            body,
        )

    async def get_raw(self, info: KindInfo, namespace: str, name: str) -> Json:
        return await call_json(
            f"read {info.kind} {namespace}/{name}",
            self.api.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            info.plural,
            name,
        )

    async def find_raw(self, info: KindInfo, namespace: str, name: str) -> Json | None:
        """The object, or None when it does not exist."""
        try:
            return await self.get_raw(info, namespace, name)
        except KubeError as error:
            if error.not_found:
                return None
            raise

    async def get(self, model: type[R], namespace: str, name: str) -> R:
        return model.from_body(await self.get_raw(by_kind(model.kind), namespace, name))

    async def find(self, model: type[R], namespace: str, name: str) -> R | None:
        raw = await self.find_raw(by_kind(model.kind), namespace, name)
        return None if raw is None else model.from_body(raw)

    async def list_raw(
        self, info: KindInfo, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Json]:
        kwargs: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
        if namespace is None:
            listing = await call_json(
                f"list {info.kind}s", self.api.list_cluster_custom_object, GROUP, VERSION, info.plural, **kwargs
            )
        else:
            listing = await call_json(
                f"list {info.kind}s in {namespace}",
                self.api.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                info.plural,
                **kwargs,
            )
        return _items(listing)

    async def list(self, model: type[R], namespace: str | None = None, label_selector: str | None = None) -> list[R]:
        return [model.from_body(item) for item in await self.list_raw(by_kind(model.kind), namespace, label_selector)]

    async def patch(self, info: KindInfo, namespace: str, name: str, body: Any) -> Json:
        """A merge patch (a dict) or a JSON patch (a list of operations) on the main resource."""
        return await call_json(
            f"patch {info.kind} {namespace}/{name}",
            self.api.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            info.plural,
            name,
            body,
        )

    async def patch_status(
        self, info: KindInfo, namespace: str, name: str, status: Json, *, resource_version: str | None = None
    ) -> Json:
        """Merge-patch the status; with `resource_version`, only if the object is still at it (else 409)."""
        body: Json = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return await call_json(
            f"patch {info.kind} {namespace}/{name} status",
            self.api.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            info.plural,
            name,
            body,
        )

    async def delete(self, info: KindInfo, namespace: str, name: str) -> None:
        await call_json(
            f"delete {info.kind} {namespace}/{name}",
            self.api.delete_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            info.plural,
            name,
        )
