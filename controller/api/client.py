"""A thin async client for Ringpilot's custom resources, over the official `kubernetes` client.

Used by the agent's tools (as the asking user, through impersonation headers), by the
orchestrator entry point and by tests. Calls run in a thread because the official client
is synchronous; every call returns typed resources.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, TypeVar, cast

from kubernetes import client, config

from controller.api.group import GROUP, VERSION
from controller.api.kinds import KindInfo, by_kind
from controller.api.meta import CustomResource

R = TypeVar("R", bound=CustomResource)  # type: ignore[type-arg]

ApiException = client.exceptions.ApiException


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


def impersonating(configuration: client.Configuration, user: str, groups: tuple[str, ...] = ()) -> client.ApiClient:
    """An ApiClient that acts as `user` (Kubernetes impersonation), so RBAC applies to the user."""
    api_client = client.ApiClient(configuration)
    api_client.set_default_header("Impersonate-User", user)
    for group in groups:
        api_client.set_default_header("Impersonate-Group", group)
    return api_client


class CustomObjects:
    """Create, read, list and patch Ringpilot objects."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api = client.CustomObjectsApi(api_client)

    async def create(self, resource: CustomResource, namespace: str) -> dict[str, Any]:  # type: ignore[type-arg]
        info = by_kind(resource.kind)
        body = resource.to_wire()
        result = await asyncio.to_thread(
            self.api.create_namespaced_custom_object, GROUP, VERSION, namespace, info.plural, body
        )
        return cast(dict[str, Any], result)

    async def get_raw(self, info: KindInfo, namespace: str, name: str) -> dict[str, Any]:
        result = await asyncio.to_thread(
            self.api.get_namespaced_custom_object, GROUP, VERSION, namespace, info.plural, name
        )
        return cast(dict[str, Any], result)

    async def get(self, model: type[R], namespace: str, name: str) -> R:
        return model.from_body(await self.get_raw(by_kind(model.kind), namespace, name))

    async def list_raw(
        self, info: KindInfo, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
        if namespace is None:
            listing = await asyncio.to_thread(
                self.api.list_cluster_custom_object, GROUP, VERSION, info.plural, **kwargs
            )
        else:
            listing = await asyncio.to_thread(
                self.api.list_namespaced_custom_object, GROUP, VERSION, namespace, info.plural, **kwargs
            )
        return cast(list[dict[str, Any]], cast(dict[str, Any], listing).get("items", []))

    async def list(self, model: type[R], namespace: str | None = None, label_selector: str | None = None) -> list[R]:
        return [model.from_body(item) for item in await self.list_raw(by_kind(model.kind), namespace, label_selector)]

    async def patch(self, info: KindInfo, namespace: str, name: str, body: Any) -> dict[str, Any]:
        """A merge patch (a dict) or a JSON patch (a list of operations) on the main resource."""
        result = await asyncio.to_thread(
            self.api.patch_namespaced_custom_object, GROUP, VERSION, namespace, info.plural, name, body
        )
        return cast(dict[str, Any], result)

    async def patch_status(self, info: KindInfo, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        result = await asyncio.to_thread(
            self.api.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            info.plural,
            name,
            {"status": status},
        )
        return cast(dict[str, Any], result)

    async def delete(self, info: KindInfo, namespace: str, name: str) -> None:
        await asyncio.to_thread(self.api.delete_namespaced_custom_object, GROUP, VERSION, namespace, info.plural, name)
