"""What a worker process opens once and shares across its messages: the `WorkerResources` middleware.

dramatiq's `AsyncIO` middleware runs the process's one event loop; this middleware, added after it,
opens on that loop in `before_worker_boot` the PostgreSQL pool, the Kubernetes client, the plane set,
the policy and whatever the `ringpilot.resources` entry points add (the agent's turn worker), and closes
them in `after_worker_shutdown`. Actors (controller/worker/actors.py) reach them through `current()`.

A `ringpilot.resources` entry point is a callable taking the keyword arguments `pool`, `api_client` and
`enqueue` (`Dispatcher.enqueue`), returning an async context manager whose value maps actor names to the
coroutine functions that handle their messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, cast

from dramatiq import Broker, Middleware, Worker
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import MiddlewareError

from controller.api.policy import Policy, load_policy
from controller.kube.client import ApiClient, api_client_from_environment
from controller.messaging.dispatching import Dispatcher
from controller.orchestration.steps import MIN_LEASE_SECONDS
from controller.planes.base import PLANE_ACTIONS, ExecutionPlane
from controller.planes.catalog import PlaneSet
from controller.settings import WorkerSettings
from controller.storage import claims
from controller.storage.db import Pool, open_pool
from controller.telemetry.tracing import TracedProxy

logger = logging.getLogger(__name__)

#: The entry-point group other packages use to open their part of a worker process.
RESOURCES_GROUP = "ringpilot.resources"

Handler = Callable[..., Awaitable[Any]]
Opener = Callable[..., AbstractAsyncContextManager[Mapping[str, Handler]]]


class ResourcesNotOpen(MiddlewareError):
    """The worker's resources are not open (no `WorkerResources` middleware, or it failed at boot)."""


def worker_owner() -> str:
    """Who this process is in step claims: `worker-<host>-<pid>`."""
    return claims.process_owner("worker")


@dataclass
class Resources:
    """One per worker process (see the module docstring)."""

    settings: WorkerSettings
    policy: Policy
    api_client: ApiClient
    dispatcher: Dispatcher
    pool: Pool | None = None
    owner: str = field(default_factory=worker_owner)
    planes: PlaneSet | None = None
    handlers: dict[str, Handler] = field(default_factory=dict)

    def require_pool(self, what: str) -> Pool:
        if self.pool is None:
            raise RuntimeError(f"RINGPILOT_DATABASE_URL: required to {what}")
        return self.pool

    def plane_set(self, what: str) -> PlaneSet:
        if self.planes is None:
            raise RuntimeError(f"RINGPILOT_DATABASE_URL: required to {what}")
        return self.planes

    def handler(self, actor_name: str) -> Handler:
        self.require_pool(f"handle {actor_name}")
        try:
            return self.handlers[actor_name]
        except KeyError:
            raise RuntimeError(
                f"Nothing handles {actor_name!r} in this worker (no {RESOURCES_GROUP} entry point)"
            ) from None


def traced_plane(plane: ExecutionPlane, name: str) -> ExecutionPlane:
    """`plane` whose calls that change a target are spans `plane <name>.<call>` in the step's trace; its
    reads are timed by the step's own span (`PLANE_READS`: a span each would cost a Monitor step more than
    5 % when every span is recorded, see bench/telemetry.py)."""
    return cast(ExecutionPlane, TracedProxy(plane, f"plane {name}", spanned=PLANE_ACTIONS))


class TracedPlaneSet(PlaneSet):
    """A `PlaneSet` whose planes are `traced_plane`s."""

    def get(self, name: str) -> ExecutionPlane:
        return traced_plane(super().get(name), name)


def pool_size(settings: WorkerSettings) -> int:
    """Connections of the one pool: a turn holds its lock's connection while it queries with another."""
    return max(8, 2 * settings.threads + 4)


async def open_resources(settings: WorkerSettings, dispatcher: Dispatcher, stack: AsyncExitStack) -> Resources:
    """Open everything; `stack` closes it again, in reverse order."""
    policy = load_policy(settings.policy_file)
    api_client = await asyncio.to_thread(api_client_from_environment)
    stack.callback(api_client.close)
    resources = Resources(settings, policy, api_client, dispatcher)
    if settings.database_url:
        pool = await open_pool(settings.database_url, min_size=1, max_size=pool_size(settings), name="worker")
        stack.push_async_callback(pool.close)
        resources.pool = pool
        resources.planes = TracedPlaneSet(api_client, pool, resources.owner, stale_claim_seconds=MIN_LEASE_SECONDS)
    else:
        logger.warning("No PostgreSQL (RINGPILOT_DATABASE_URL): this worker cannot run steps, fixes or turns")
        return resources
    for ep in entry_points(group=RESOURCES_GROUP):
        opener: Opener = ep.load()
        handlers = await stack.enter_async_context(
            opener(pool=resources.pool, api_client=api_client, enqueue=dispatcher.enqueue)
        )
        resources.handlers.update(handlers)
        logger.info("Opened %s resources of %r: %s", RESOURCES_GROUP, ep.name, ", ".join(sorted(handlers)))
    return resources


_current: Resources | None = None


def current() -> Resources:
    """This process's resources (open between worker boot and shutdown)."""
    if _current is None:
        raise ResourcesNotOpen("The worker's resources are not open")
    return _current


class WorkerResources(Middleware):
    """Opens the process's `Resources` on the `AsyncIO` middleware's loop, once; add it after `AsyncIO`."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.stack: AsyncExitStack | None = None

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        global _current
        loop = get_event_loop_thread()
        if loop is None:
            raise ResourcesNotOpen("The AsyncIO middleware must come before WorkerResources")
        self.stack = AsyncExitStack()
        try:
            _current = loop.run_coroutine(open_resources(self.settings, Dispatcher(broker), self.stack))
        except Exception as error:
            logger.exception("Could not open the worker's resources")
            loop.run_coroutine(self.stack.aclose())
            raise ResourcesNotOpen(f"Could not open the worker's resources: {error}") from error

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        global _current
        loop = get_event_loop_thread()
        if self.stack is not None and loop is not None:
            loop.run_coroutine(self.stack.aclose())
        self.stack = None
        _current = None
