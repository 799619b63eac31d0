"""The agent's per-process runtime in a dramatiq worker: one event loop thread and the objects turns share.

dramatiq runs actors in plain threads; `AgentRuntime` keeps one asyncio loop in a background thread
where the PostgreSQL pool, the Redis client, the providers and the Kubernetes clients live, and
actors submit coroutines to it. It is built lazily on the first turn of a worker process from
`AgentSettings`, so importing `agent.actors` stays cheap and needs no network.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import dramatiq
from kubernetes import client

from agent.chat.state import ChatStateManager
from agent.chat.turnlog import TurnLog
from agent.conversation.engine import Engine
from agent.conversation.worker import TurnWorker
from agent.health.breakers import BreakerBoard
from agent.health.probes import KnownApps, build_probes
from agent.llm.choosing import ProviderFactory
from agent.settings import AgentSettings
from agent.tools.base import ToolServices
from agent.tools.registry import ToolRegistry
from controller.api.client import configuration_from_environment, impersonating
from controller.api.conversation import TURN_ACTOR, TURN_QUEUE
from controller.api.policy import load_policy
from controller.settings import load_settings
from controller.storage.cache import redis_client
from controller.storage.db import open_pool

logger = logging.getLogger(__name__)
T = TypeVar("T")


def schedule_retry(
    namespace: str, name: str, uid: str, message_id: str, correlation_id: str, delay_ms: int, attempt: int
) -> None:
    """Enqueue a later try of a turn on the global broker (the worker's), keyed by its attempt."""
    from dramatiq.broker import get_broker

    key = f"turn/{uid}/{message_id}/retry-{attempt}"
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=TURN_QUEUE,
        actor_name=TURN_ACTOR,
        args=(),
        kwargs={
            "namespace": namespace,
            "name": name,
            "uid": uid,
            "message_id": message_id,
            "correlation_id": correlation_id,
        },
        options={"correlation_id": correlation_id, "idempotency_key": key},
    )
    get_broker().enqueue(message, delay=delay_ms)


class AgentRuntime:
    """See the module docstring."""

    def __init__(self, settings: AgentSettings) -> None:
        if not settings.database_url:
            raise RuntimeError("RINGPILOT_DATABASE_URL: required by the conversation engine")
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="agent-loop", daemon=True)
        self.thread.start()
        self.configuration = configuration_from_environment()
        self._clients: dict[str, client.ApiClient] = {}
        self.worker: TurnWorker = self.run(self._open(), timeout_seconds=60)

    def kube_for(self, user: str) -> client.ApiClient:
        """An API client acting as `user` (impersonation); one per user, reused."""
        if user not in self._clients:
            if len(self._clients) > 256:
                self._clients.clear()
            self._clients[user] = impersonating(self.configuration, user)
        return self._clients[user]

    async def _open(self) -> TurnWorker:
        s = self.settings
        assert s.database_url is not None
        policy = load_policy(s.policy_file)
        self.pool = await open_pool(s.database_url, max_size=s.pool_max_size, name="agent")
        self.redis = redis_client(s.redis_url) if s.redis_url else None
        self.service_client = client.ApiClient(self.configuration)
        breakers = (
            BreakerBoard(self.redis, fail_max=s.breaker_fail_max, reset_seconds=s.breaker_reset_seconds)
            if self.redis is not None
            else None
        )
        self.providers = ProviderFactory(s)
        services = ToolServices(
            policy=policy,
            kube_for=self.kube_for,
            pool=self.pool,
            redis=self.redis,
            breakers=breakers,
            probes=build_probes(s, self.pool, self.redis, self.service_client, breakers),
            known_apps=KnownApps(self.service_client),
        )
        chat = ChatStateManager(
            self.pool, self.redis, policy, ttl_seconds=s.context_ttl_seconds, window=s.context_messages
        )
        turnlog = TurnLog(self.pool, chat)
        engine = Engine(
            chat=chat,
            turnlog=turnlog,
            registry=ToolRegistry(),
            providers=self.providers,
            services=services,
            settings=s,
            breakers=breakers,
        )
        logger.info("Conversation engine ready (provider %s)", s.default_provider().value)
        return TurnWorker(
            engine=engine,
            turnlog=turnlog,
            pool=self.pool,
            api_client=self.service_client,
            schedule_retry=schedule_retry,
            clock=lambda: datetime.now(UTC),
        )

    def run(self, coro: Coroutine[Any, Any, T], timeout_seconds: float | None = None) -> T:
        """Run `coro` on the runtime's loop and wait for it (cancelled if the waiting thread is interrupted)."""
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout_seconds)
        except BaseException:
            future.cancel()
            raise

    def answer(self, namespace: str, name: str, uid: str, correlation_id: str) -> None:
        started = time.perf_counter()
        self.run(self.worker.handle(namespace, name, uid, correlation_id))
        logger.debug("Turn work on %s/%s took %.1f ms", namespace, name, (time.perf_counter() - started) * 1000)

    def close(self) -> None:
        async def shutdown() -> None:
            await self.providers.aclose()
            if self.redis is not None:
                await self.redis.aclose()
            await self.pool.close()

        self.run(shutdown(), timeout_seconds=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


_lock = threading.Lock()
_runtime: AgentRuntime | None = None


def runtime() -> AgentRuntime:
    """The process's runtime, built on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = AgentRuntime(load_settings(AgentSettings))
        return _runtime
