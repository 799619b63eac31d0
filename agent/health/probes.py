"""Component probes behind `check_health`, and the cluster's app names for the offline router.

Each probe answers (ok, detail) for one component the health report lists: the Kubernetes API,
PostgreSQL, Redis, the broker's queue depth, the language-model provider (its breaker) and the
kubernetes execution plane (ring namespaces and workloads it can see). `KnownApps` caches the apps
the cluster runs for a few seconds, so routing a message costs no API call most of the time.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client

from agent.health.breakers import BreakerBoard, BreakerState
from agent.settings import AgentSettings
from agent.tools.base import HealthProbe
from agent.tools.lookups import list_items
from controller.api.conversation import TURN_QUEUE
from controller.api.labels import APP_NAME_LABEL, RING_NAMESPACE_LABEL

QUEUE_DEPTH_LIMIT = 1000
STEPS_QUEUE = "steps"


class KnownApps:
    """Names of the apps that have workloads, refreshed at most every `ttl_seconds`."""

    def __init__(self, api_client: client.ApiClient, ttl_seconds: float = 15.0) -> None:
        self.apps = client.AppsV1Api(api_client)
        self.ttl_seconds = ttl_seconds
        self._names: list[str] = []
        self._at = float("-inf")

    async def __call__(self) -> list[str]:
        if time.monotonic() - self._at > self.ttl_seconds:
            items = await list_items(self.apps.list_deployment_for_all_namespaces, label_selector=APP_NAME_LABEL)
            self._names = sorted({str((d["metadata"].get("labels") or {})[APP_NAME_LABEL]) for d in items})
            self._at = time.monotonic()
        return self._names


def _broker_queues() -> tuple[str, list[str]] | None:
    """The Redis key prefix of this process's broker and its queues, when it has a RedisBroker."""
    from dramatiq import broker as brokers

    namespace = getattr(brokers.global_broker, "namespace", None)
    if namespace is None:
        return None
    return str(namespace), [TURN_QUEUE, STEPS_QUEUE]


def build_probes(
    settings: AgentSettings, pool: Any, redis: Any, api_client: client.ApiClient, breakers: BreakerBoard | None
) -> tuple[HealthProbe, ...]:
    """The probes of a worker process."""
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)

    async def kubernetes_api() -> tuple[bool, str]:
        await list_items(core.list_namespace, limit=1)
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
        found = _broker_queues()
        if found is None:
            return True, "not a Redis broker in this process"
        namespace, queues = found
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
        namespaces = await list_items(core.list_namespace, label_selector=RING_NAMESPACE_LABEL)
        workloads = await list_items(apps.list_deployment_for_all_namespaces, label_selector=APP_NAME_LABEL)
        return bool(namespaces), f"{len(namespaces)} ring namespaces, {len(workloads)} workloads"

    return (
        HealthProbe("kubernetes-api", kubernetes_api),
        HealthProbe("postgresql", postgresql),
        HealthProbe("redis", redis_server),
        HealthProbe("broker-queues", broker_queue),
        HealthProbe("llm-provider", llm_provider),
        HealthProbe("execution-plane-kubernetes", kubernetes_plane),
    )
