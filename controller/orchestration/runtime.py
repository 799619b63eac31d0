"""Wiring orchestration into the controller and worker processes.

Controller: `start_orchestration` (called from controller/operator/startup.py) builds the Kubernetes client,
the planes and the `KubeWorld` the DeploymentTask reconcile reads and writes through; it is kept in
`deps.orchestration`. Worker: `run_step` (called by the actors in controller/worker/actors.py) runs a step
body on one event loop per worker process, which keeps one PostgreSQL pool, one Kubernetes client
and one instance of each plane for every message instead of opening them per message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubernetes.config.config_exception import ConfigException

from controller.api.client import api_client_from_environment
from controller.api.policy import Policy, load_policy
from controller.messaging.dispatching import Dispatcher
from controller.orchestration.execution import BODIES, StepContext, StepRequest, execute
from controller.orchestration.observing import KubeWorld
from controller.orchestration.steps import MIN_LEASE_SECONDS
from controller.planes.base import ExecutionPlane
from controller.planes.catalog import build_plane
from controller.settings import WorkerSettings, load_settings
from controller.storage.db import Pool, open_pool

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Planes:
    """One plane instance per name, built on first use; a silent plane claim is taken over after a lease."""

    api_client: Any
    pool: Pool
    owner: str | None = None
    planes: dict[str, ExecutionPlane] = field(default_factory=dict)

    def get(self, name: str) -> ExecutionPlane:
        if name not in self.planes:
            self.planes[name] = build_plane(
                name,
                api_client=self.api_client,
                pool=self.pool,
                owner=self.owner,
                stale_claim_seconds=MIN_LEASE_SECONDS,
            )
        return self.planes[name]


@dataclass
class StatusMemo:
    """The status this controller last wrote per object, and the resourceVersion it was computed from.

    Kopf applies a handler's status patch after the handler returns, and the resync timer or a queued
    event may run the next reconcile on a body read before that patch landed. A body with the same
    resourceVersion as the last input is such a stale copy: its status is replaced by the one written.
    """

    entries: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    limit: int = 10_000

    def fresh(self, body: dict[str, Any]) -> dict[str, Any]:
        meta = body.get("metadata") or {}
        entry = self.entries.get(str(meta.get("uid")))
        if entry is None or entry[0] != str(meta.get("resourceVersion")):
            return body
        return {**body, "status": entry[1]}

    def remember(self, body: dict[str, Any], patch: dict[str, Any]) -> None:
        meta = body.get("metadata") or {}
        status = dict(body.get("status") or {})
        for key, value in patch.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        uid = str(meta.get("uid"))
        self.entries.pop(uid, None)
        self.entries[uid] = (str(meta.get("resourceVersion")), status)
        while len(self.entries) > self.limit:  # the least recently written go first
            self.entries.pop(next(iter(self.entries)))


@dataclass
class OrchestrationRuntime:
    """What the controller keeps in `deps.orchestration`."""

    world: KubeWorld
    api_client: Any
    memo: StatusMemo = field(default_factory=StatusMemo)


async def start_orchestration(pool: Pool | None, dispatcher: Dispatcher | None) -> OrchestrationRuntime | None:
    """The controller's runtime; None (logged) without PostgreSQL or Kubernetes credentials."""
    if pool is None:
        logger.warning("DeploymentTasks are not orchestrated: no PostgreSQL (RINGPILOT_DATABASE_URL)")
        return None
    try:
        api_client = await asyncio.to_thread(api_client_from_environment)
    except (ConfigException, OSError, TypeError) as error:
        logger.warning("DeploymentTasks are not orchestrated: no Kubernetes credentials (%s)", error)
        return None
    return OrchestrationRuntime(KubeWorld(api_client, pool, Planes(api_client, pool), dispatcher), api_client)


async def stop_orchestration(runtime: OrchestrationRuntime | None) -> None:
    if runtime is not None:
        runtime.api_client.close()


def worker_owner() -> str:
    return f"worker-{socket.gethostname()}-{os.getpid()}"


class WorkerLoop:
    """A daemon thread running one event loop; dramatiq's threads submit coroutines to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="orchestration-loop", daemon=True)
        self.thread.start()
        self._context: StepContext | None = None
        self._lock = asyncio.Lock()

    def run(self, coro: Coroutine[Any, Any, T], timeout_seconds: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_seconds)

    async def context(self) -> StepContext:
        async with self._lock:
            if self._context is None:
                settings = load_settings(WorkerSettings)
                if not settings.database_url:
                    raise RuntimeError("RINGPILOT_DATABASE_URL: required to run deployment steps")
                pool = await open_pool(settings.database_url, min_size=1, max_size=8, name="orchestration")
                api_client = await asyncio.to_thread(api_client_from_environment)
                policy: Policy = load_policy(settings.policy_file)
                owner = worker_owner()
                self._context = StepContext(pool, api_client, Planes(api_client, pool, owner), policy, owner)
            return self._context


_loop_lock = threading.Lock()
_loops: dict[int, WorkerLoop] = {}


def worker_loop() -> WorkerLoop:
    """The loop of this process (a forked worker process gets its own)."""
    pid = os.getpid()
    with _loop_lock:
        if pid not in _loops:
            _loops[pid] = WorkerLoop()
        return _loops[pid]


def run_step(body_name: str, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """What an actor calls: run step `body_name` for the message's kwargs; the report, or None if skipped."""
    step, body = BODIES[body_name]
    request = StepRequest(**kwargs)
    loop = worker_loop()

    async def go() -> dict[str, Any] | None:
        return await execute(await loop.context(), request, body, step)

    return loop.run(go())
