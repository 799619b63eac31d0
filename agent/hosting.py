"""The agent's part of a worker process: `open_turns`, the `ringpilot.resources` entry point.

The worker's resources middleware (controller/worker/resources.py) calls it once per process, on the
process's event loop, with the worker's PostgreSQL pool, Kubernetes client and enqueue function; it
opens the conversation engine and the turn worker from `AgentSettings` and yields the handler of the
`answer_turn` actor (declared in controller/worker/actors.py). Delayed tries of a turn go through the
worker's `Dispatcher.enqueue`, so their message id comes from the idempotency key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from agent.chat.events import EventLog
from agent.chat.state import ChatStateManager
from agent.chat.turnlog import TurnLog
from agent.conversation.engine import Engine
from agent.conversation.worker import RetryScheduler, TurnWorker
from agent.health.breakers import BreakerBoard
from agent.health.probes import KnownApps, build_probes
from agent.llm.choosing import ProviderFactory
from agent.settings import AgentSettings
from agent.tools.base import ToolServices
from agent.tools.registry import ToolRegistry
from controller.api.conversation import TURN_ACTOR, TURN_QUEUE
from controller.api.policy import load_policy
from controller.kube.client import ApiClient
from controller.settings import load_settings
from controller.storage.cache import redis_client
from controller.storage.db import Pool

logger = logging.getLogger(__name__)

#: `Dispatcher.enqueue` (controller/messaging/dispatching.py), called with keyword arguments.
Enqueue = Callable[..., Any]
TurnHandler = Callable[[str, str, str, str, str], Awaitable[None]]


def retry_scheduler(enqueue: Enqueue) -> RetryScheduler:
    """Enqueue a later try of a turn through the worker's one enqueue path, keyed by its attempt."""

    def schedule_retry(
        namespace: str, name: str, uid: str, message_id: str, correlation_id: str, delay_ms: int, attempt: int
    ) -> None:
        enqueue(
            TURN_ACTOR,
            TURN_QUEUE,
            key=f"turn/{uid}/{message_id}/retry-{attempt}",
            correlation_id=correlation_id,
            kwargs={"namespace": namespace, "name": name, "uid": uid, "message_id": message_id},
            delay_ms=delay_ms,
        )

    return schedule_retry


async def build_turn_worker(
    settings: AgentSettings, *, pool: Pool, api_client: ApiClient, enqueue: Enqueue, redis: Any
) -> tuple[TurnWorker, ProviderFactory]:
    """The turn worker and the providers it talks to (closed by the caller)."""
    policy = load_policy(settings.policy_file)
    breakers = (
        BreakerBoard(redis, fail_max=settings.breaker_fail_max, reset_seconds=settings.breaker_reset_seconds)
        if redis is not None
        else None
    )
    providers = ProviderFactory(settings)
    services = ToolServices(
        policy=policy,
        kube=api_client,
        pool=pool,
        redis=redis,
        breakers=breakers,
        probes=build_probes(settings, pool, redis, api_client, breakers),
        known_apps=KnownApps(api_client),
    )
    chat = ChatStateManager(
        pool, redis, policy, ttl_seconds=settings.context_ttl_seconds, window=settings.context_messages
    )
    turnlog = TurnLog(pool, chat)
    engine = Engine(
        chat=chat,
        turnlog=turnlog,
        registry=ToolRegistry(),
        providers=providers,
        services=services,
        settings=settings,
        breakers=breakers,
        events=EventLog(pool, redis),
    )
    logger.info("Conversation engine ready (provider %s)", settings.default_provider().value)
    worker = TurnWorker(
        engine=engine,
        turnlog=turnlog,
        pool=pool,
        api_client=api_client,
        schedule_retry=retry_scheduler(enqueue),
        clock=lambda: datetime.now(UTC),
    )
    return worker, providers


def turn_handler(worker: TurnWorker) -> TurnHandler:
    async def answer(namespace: str, name: str, uid: str, message_id: str, correlation_id: str) -> None:
        started = time.perf_counter()
        await worker.handle(namespace, name, uid, correlation_id)
        logger.debug(
            "Turn %r of %s/%s took %.1f ms", message_id, namespace, name, (time.perf_counter() - started) * 1000
        )

    return answer


@asynccontextmanager
async def open_turns(
    *, pool: Pool, api_client: ApiClient, enqueue: Enqueue
) -> AsyncIterator[Mapping[str, TurnHandler]]:
    """Open the agent's resources for one worker process; yields {actor name: handler}."""
    settings = load_settings(AgentSettings)
    redis = redis_client(settings.redis_url) if settings.redis_url else None
    worker, providers = await build_turn_worker(
        settings, pool=pool, api_client=api_client, enqueue=enqueue, redis=redis
    )
    try:
        yield {TURN_ACTOR: turn_handler(worker)}
    finally:
        await providers.aclose()
        if redis is not None:
            await redis.aclose()
