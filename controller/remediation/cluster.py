"""The Kubernetes API calls of drift detection and remediation, behind a small protocol.

`Cluster` is what the drift sweep and the Remediation controller need from the API server: list and
patch Assignments, create and read Remediations, see rollouts in flight, post Events. `KubeCluster`
implements it over the Kubernetes access layer (controller/kube/), turning a missing object into None
and an API server that does not answer into `Unavailable`; tests use an in-memory fake.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from controller.api.deploymenttask import FINAL_PHASES
from controller.api.group import GROUP, VERSION
from controller.api.kinds import ASSIGNMENT, DEPLOYMENT_TASK, REMEDIATION
from controller.core.errors import Unavailable
from controller.kube.client import ApiClient, CustomObjects, KubeError
from controller.kube.coreapps import CoreApps, event_name

logger = logging.getLogger(__name__)

Json = dict[str, Any]
T = TypeVar("T")

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
    """`Cluster` over the Kubernetes access layer."""

    def __init__(self, api_client: ApiClient) -> None:
        self.objects = CustomObjects(api_client)
        self.core = CoreApps(api_client)
        self.live_tasks: Mapping[str, Iterable[Mapping[str, Any]]] | None = None

    def attach(self, live_tasks: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
        """Read the tasks in flight from the operator's Kopf index (app -> entries) instead of a list."""
        self.live_tasks = live_tasks

    @staticmethod
    async def _call(call: Awaitable[T]) -> T | None:
        """None for a 404; other 4xx (but 429) raise as they are; the rest is `Unavailable`."""
        try:
            return await call
        except KubeError as error:
            if error.not_found:
                return None
            if not error.transient:
                raise
            raise Unavailable(str(error), 5.0) from error

    async def list_assignments(self, namespaces: list[str] | None) -> list[Json]:
        if not namespaces:
            return await self._call(self.objects.list_raw(ASSIGNMENT)) or []
        items: list[Json] = []
        for namespace in namespaces:
            items.extend(await self._call(self.objects.list_raw(ASSIGNMENT, namespace)) or [])
        return items

    async def get_assignment(self, namespace: str, name: str) -> Json | None:
        return await self._call(self.objects.get_raw(ASSIGNMENT, namespace, name))

    async def patch_assignment_status(self, namespace: str, name: str, status: Json) -> Json | None:
        return await self._call(self.objects.patch_status(ASSIGNMENT, namespace, name, status))

    async def create_remediation(self, namespace: str, body: Json) -> Json:
        created = await self._call(self.objects.create_raw(REMEDIATION, namespace, body))
        if created is None:
            raise Unavailable(f"Namespace {namespace} is gone", 5.0)
        return created

    async def get_remediation(self, namespace: str, name: str) -> Json | None:
        return await self._call(self.objects.get_raw(REMEDIATION, namespace, name))

    async def list_deployment_tasks(self) -> list[Json]:
        if self.live_tasks is not None:  # every task that can still change is in the index
            return [dict(entry) for entries in self.live_tasks.values() for entry in entries]
        return await self._call(self.objects.list_raw(DEPLOYMENT_TASK)) or []

    async def post_event(self, ref: ObjectRef, reason: str, message: str, type_: str, now: datetime) -> None:
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        # Named by what it says and the minute it was decided in: a check repeated after a controller crash
        # posts the same name, which the API server refuses (409) instead of storing a second Event.
        name = event_name(ref.name, ref.uid, reason, type_, message, now.strftime("%Y-%m-%dT%H:%M"))
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ref.namespace},
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
            await self._call(self.core.create_event(ref.namespace, body))
        except KubeError as error:
            if error.conflict:
                logger.debug("Event %s on %s %s/%s was posted already", reason, ref.kind, ref.namespace, ref.name)
                return
            logger.warning("Could not post Event %s on %s %s/%s: %s", reason, ref.kind, ref.namespace, ref.name, error)
        except Unavailable as error:  # an Event is best effort; the audit row is the record
            logger.warning("Could not post Event %s on %s %s/%s: %s", reason, ref.kind, ref.namespace, ref.name, error)
