"""The Kubernetes API calls of drift detection and remediation, behind a small protocol.

`Cluster` is what the drift sweep and the Remediation controller need from the API server: list and
patch Assignments, create and read Remediations, see rollouts in flight, post Events. `KubeCluster`
implements it with the official client (blocking calls run in threads; lists are decoded without
model deserialization, which matters for thousands of objects); tests use an in-memory fake.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controller.api.deploymenttask import FINAL_PHASES
from controller.api.group import GROUP, VERSION
from controller.core.errors import Unavailable

logger = logging.getLogger(__name__)

Json = dict[str, Any]

#: DeploymentTask phases in which a rollout may still change workloads.
SETTLED_TASK_PHASES = FINAL_PHASES


@dataclass(frozen=True)
class ObjectRef:
    """What an Event is about."""

    kind: str
    namespace: str
    name: str
    uid: str | None = None
    api_version: str = f"{GROUP}/{VERSION}"


class Cluster(Protocol):
    async def list_assignments(self, namespaces: list[str] | None) -> list[Json]: ...

    async def get_assignment(self, namespace: str, name: str) -> Json | None: ...

    async def patch_assignment_status(self, namespace: str, name: str, status: Json) -> Json | None:
        """Merge-patch the status; None when the Assignment is gone."""
        ...

    async def create_remediation(self, namespace: str, body: Json) -> Json: ...

    async def get_remediation(self, namespace: str, name: str) -> Json | None: ...

    async def list_deployment_tasks(self) -> list[Json]: ...

    async def post_event(self, ref: ObjectRef, reason: str, message: str, type_: str, now: datetime) -> None: ...


def tasks_in_flight(tasks: list[Json]) -> dict[str, str]:
    """app -> name of a DeploymentTask still changing it (the first one found)."""
    busy: dict[str, str] = {}
    for task in tasks:
        phase = (task.get("status") or {}).get("phase")
        app = (task.get("spec") or {}).get("app")
        if app and phase and phase not in SETTLED_TASK_PHASES and app not in busy:
            busy[str(app)] = str(task["metadata"]["name"])
    return busy


class KubeCluster:
    """`Cluster` over the official client."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Json | None:
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
        except ApiException as error:
            if error.status == 404:
                return None
            if error.status is not None and 400 <= error.status < 500 and error.status != 429:
                raise
            raise Unavailable(f"Could not {what}: {error.status} {error.reason}", 5.0) from error
        except (OSError, urllib3.exceptions.HTTPError) as error:
            raise Unavailable(f"Could not {what}: {type(error).__name__}", 5.0) from error

    async def list_assignments(self, namespaces: list[str] | None) -> list[Json]:
        if not namespaces:
            listing = await self._call(
                "list Assignments", self.custom.list_cluster_custom_object, GROUP, VERSION, "assignments"
            )
            return list((listing or {}).get("items") or [])
        items: list[Json] = []
        for namespace in namespaces:
            listing = await self._call(
                f"list Assignments in {namespace}",
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                "assignments",
            )
            items.extend((listing or {}).get("items") or [])
        return items

    async def get_assignment(self, namespace: str, name: str) -> Json | None:
        return await self._call(
            f"read Assignment {namespace}/{name}",
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            "assignments",
            name,
        )

    async def patch_assignment_status(self, namespace: str, name: str, status: Json) -> Json | None:
        return await self._call(
            f"patch Assignment {namespace}/{name} status",
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            "assignments",
            name,
            {"status": status},
        )

    async def create_remediation(self, namespace: str, body: Json) -> Json:
        created = await self._call(
            f"create Remediation in {namespace}",
            self.custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            "remediations",
            body,
        )
        if created is None:
            raise Unavailable(f"Namespace {namespace} is gone", 5.0)
        return created

    async def get_remediation(self, namespace: str, name: str) -> Json | None:
        return await self._call(
            f"read Remediation {namespace}/{name}",
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            "remediations",
            name,
        )

    async def list_deployment_tasks(self) -> list[Json]:
        listing = await self._call(
            "list DeploymentTasks", self.custom.list_cluster_custom_object, GROUP, VERSION, "deploymenttasks"
        )
        return list((listing or {}).get("items") or [])

    async def post_event(self, ref: ObjectRef, reason: str, message: str, type_: str, now: datetime) -> None:
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": ref.api_version,
                "kind": ref.kind,
                "namespace": ref.namespace,
                "name": ref.name,
                **({"uid": ref.uid} if ref.uid else {}),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": "ringpilot"},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self._call(
                f"post Event on {ref.kind} {ref.namespace}/{ref.name}",
                self.core.create_namespaced_event,
                ref.namespace,
                body,
            )
        except (ApiException, Unavailable) as error:  # an Event is best effort; the audit row is the record
            logger.warning("Could not post Event %s on %s %s/%s: %s", reason, ref.kind, ref.namespace, ref.name, error)
