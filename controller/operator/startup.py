"""Building and closing the controller's dependencies: policy, PostgreSQL pool, broker, Redis.

Called by the startup and cleanup handlers; migrations are applied here too, so a fresh
database is ready before the first reconcile. Probes report each dependency's health.
"""

from __future__ import annotations

import logging

from controller.api.policy import load_policy
from controller.messaging.broker import RetryPolicy, build_broker
from controller.messaging.dispatching import Dispatcher
from controller.orchestration.runtime import start_orchestration, stop_orchestration
from controller.reconcile.deps import Deps
from controller.remediation.runtime import start_remediation, stop_remediation
from controller.settings import ControllerSettings
from controller.storage.cache import ping, redis_client
from controller.storage.db import open_pool
from controller.storage.migrating import migrate_async

logger = logging.getLogger(__name__)


async def open_deps(settings: ControllerSettings) -> Deps:
    policy = load_policy(settings.policy_file)
    deps = Deps(settings=settings, policy=policy)
    if settings.database_url:
        applied = await migrate_async(settings.database_url)
        if applied:
            logger.info("Applied migrations %s", ", ".join(applied))
        deps.pool = await open_pool(settings.database_url)
    if settings.redis_url:
        deps.redis = redis_client(settings.redis_url)
        deps.dispatcher = Dispatcher(build_broker(settings.redis_url, RetryPolicy(), set_global=False))
    deps.remediation = await start_remediation(policy, deps.pool, deps.dispatcher, settings.namespace)
    deps.orchestration = await start_orchestration(deps.pool, deps.dispatcher)
    return deps


async def close_deps(deps: Deps) -> None:
    await stop_remediation(deps.remediation)
    await stop_orchestration(deps.orchestration)
    if deps.pool is not None:
        await deps.pool.close()
    if deps.dispatcher is not None:
        deps.dispatcher.broker.close()
    if deps.redis is not None:
        await deps.redis.aclose()


async def probe_database(deps: Deps) -> str:
    if deps.pool is None:
        return "not configured"
    async with deps.pool.connection() as conn:
        await conn.execute("SELECT 1")
    return "ok"


async def probe_redis(deps: Deps) -> str:
    if deps.redis is None:
        return "not configured"
    if not await ping(deps.redis):
        raise RuntimeError("Redis does not answer")
    return "ok"
