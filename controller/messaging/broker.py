"""The dramatiq broker on Redis, with retry defaults in dramatiq's unit (milliseconds).

`build_broker` is called once per process before any actor module is imported: by the worker's boot
(controller/worker/boot.py, then `controller.worker.actors` is imported) and by the controller, which
only enqueues messages by actor name and never imports an actor. Its `AsyncIO` middleware gives a
worker process its one event loop, on which the `async def` actors run.
"""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from controller.messaging.propagation import TraceContext

#: Queue for the controller's slow steps (evidence, rollouts, polling, fixes).
STEPS_QUEUE = "steps"
#: Queue for conversation turns.
TURNS_QUEUE = "turns"
#: Namespace of every Ringpilot key in Redis.
REDIS_NAMESPACE = "ringpilot"


@dataclass(frozen=True)
class RetryPolicy:
    """dramatiq counts milliseconds; Kopf counts seconds: these are milliseconds."""

    max_retries: int = 10
    min_backoff_ms: int = 500
    max_backoff_ms: int = 60_000
    time_limit_ms: int = 600_000
    max_age_ms: int = 24 * 3600 * 1000


def build_broker(redis_url: str, retry: RetryPolicy | None = None, *, set_global: bool = True) -> RedisBroker:
    """A RedisBroker with our middleware; made the global broker unless told otherwise."""
    retry = retry or RetryPolicy()
    broker = RedisBroker(url=redis_url, namespace=f"{REDIS_NAMESPACE}-dramatiq", middleware=[])
    for middleware in (
        AgeLimit(max_age=retry.max_age_ms),
        TimeLimit(time_limit=retry.time_limit_ms),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(
            max_retries=retry.max_retries,
            min_backoff=retry.min_backoff_ms,
            max_backoff=retry.max_backoff_ms,
        ),
        CurrentMessage(),
        TraceContext(),
        AsyncIO(),
    ):
        broker.add_middleware(middleware)
    for queue in (STEPS_QUEUE, TURNS_QUEUE):
        broker.declare_queue(queue)
    if set_global:
        dramatiq.set_broker(broker)
    return broker


def queue_key(queue: str) -> str:
    """The Redis list of messages waiting in `queue` (its length is the queue depth)."""
    return f"{REDIS_NAMESPACE}-dramatiq:{queue}"
