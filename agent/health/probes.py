"""Component probes behind `check_health`, and the cluster's app names for the offline router.

Each probe answers (ok, detail) for one component the health report lists: the Kubernetes API,
PostgreSQL, Redis, the broker's queue depth, the language-model provider (its breaker) and the
kubernetes execution plane (ring namespaces and workloads it can see, by the rule of
controller/kube/workloads.py). `KnownApps` caches the apps the cluster runs for a few seconds, so
routing a message costs no API call most of the time.
"""

from __future__ import annotations

import time
from typing import Any

from agent.health.breakers import BreakerBoard, BreakerState
from agent.settings import AgentSettings
from agent.tools.base import HealthProbe
from controller.api.conversation import TURN_QUEUE
from controller.kube import workloads as discovery
from controller.kube.client import ApiClient
from controller.kube.coreapps import CoreApps

QUEUE_DEPTH_LIMIT = 1000
STEPS_QUEUE = "steps"
#: The Redis key prefix of the worker's broker (controller/messaging/broker.py: `<namespace>-dramatiq`).
BROKER_NAMESPACE = "ringpilot-dramatiq"


class KnownApps:
    """Names of the apps that have workloads, refreshed at most every `ttl_seconds`."""

    def __init__(self, api_client: ApiClient, ttl_seconds: float = 15.0) -> None:
        self.api = CoreApps(api_client)
        self.ttl_seconds = ttl_seconds
        self._names: list[str] = []
        self._at = float("-inf")

    async def __call__(self) -> list[str]:
        if time.monotonic() - self._at > self.ttl_seconds:
            self._names = sorted({w.app for w in await discovery.find_workloads(self.api)})
            self._at = time.monotonic()
        return self._names


def build_probes(
    settings: AgentSettings, pool: Any, redis: Any, api_client: ApiClient, breakers: BreakerBoard | None
) -> tuple[HealthProbe, ...]:
    """The probes of a worker process."""
    core = CoreApps(api_client)

    async def kubernetes_api() -> tuple[bool, str]:
        await core.list_namespaces(limit=1)
        return True, "answers"

    async def postgresql() -> tuple[bool, str]:
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
        return True, "answers"

    async def redis_server() -> tuple[bool, str]:
        if redis is None:
            return False, "not configured"
        return bool(await redis.ping()), "answers"

    async def broker_queue() -> tuple[bool, str]:
        if redis is None:
            return False, "no Redis"
        namespace, queues = BROKER_NAMESPACE, [TURN_QUEUE, STEPS_QUEUE]
        depths = {
            q: int(await redis.llen(f"{namespace}:{q}")) + int(await redis.llen(f"{namespace}:{q}.DQ")) for q in queues
        }
        detail = ", ".join(f"{q}: {n} waiting" for q, n in depths.items())
        return all(n < QUEUE_DEPTH_LIMIT for n in depths.values()), detail

    async def llm_provider() -> tuple[bool, str]:
        provider = settings.default_provider().value
        if provider == "offline":
            return True, "offline router (no external model)"
        if breakers is None:
            return True, f"{provider}, no breaker store"
        breaker = await breakers.get(f"llm-{provider}")
        return breaker.state is not BreakerState.OPEN, f"{provider}, breaker {breaker.state.value}"

    async def kubernetes_plane() -> tuple[bool, str]:
        namespaces = await discovery.ring_namespaces(core)
        workloads = await discovery.find_workloads(core)
        return bool(namespaces), f"{len(namespaces)} ring namespaces, {len(workloads)} workloads"

    return (
        HealthProbe("kubernetes-api", kubernetes_api),
        HealthProbe("postgresql", postgresql),
        HealthProbe("redis", redis_server),
        HealthProbe("broker-queues", broker_queue),
        HealthProbe("llm-provider", llm_provider),
        HealthProbe("execution-plane-kubernetes", kubernetes_plane),
    )
