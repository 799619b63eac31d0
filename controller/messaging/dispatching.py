"""Enqueue slow steps by actor name, so the controller never imports a worker module.

Every message carries the correlation ID in its options and payload; the message id is
derived from an idempotency key, so enqueuing the same step twice is harmless (actors
claim the key in PostgreSQL before acting).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import dramatiq
from dramatiq.broker import Broker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from controller.messaging.broker import queue_key
from controller.telemetry.metrics import STEPS_ENQUEUED

logger = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6f1d7a3e-8c7b-4f43-9a57-0d1c2b3a4e5f")


def message_id_for(key: str) -> str:
    """A stable message id for an idempotency key."""
    return str(uuid.uuid5(_NAMESPACE, key))


class Dispatcher:
    """Sends messages to named actors on the broker."""

    #: How long a queue depth read from the broker is reused (every round of every task asks for it).
    DEPTH_TTL_SECONDS = 1.0

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._depths: dict[str, tuple[float, int]] = {}

    async def queued(self, queue: str) -> int:
        """Messages waiting in `queue` (not the delayed ones), read at most once a second."""
        at, depth = self._depths.get(queue, (float("-inf"), 0))
        if time.monotonic() - at < self.DEPTH_TTL_SECONDS:
            return depth
        broker = self.broker
        if isinstance(broker, RedisBroker):
            depth = int(await asyncio.to_thread(broker.client.llen, queue_key(queue)))
        elif isinstance(broker, StubBroker) and queue in broker.queues:
            depth = broker.queues[queue].qsize()
        self._depths[queue] = (time.monotonic(), depth)
        return depth

    def enqueue(
        self,
        actor_name: str,
        queue: str,
        *,
        key: str,
        correlation_id: str,
        kwargs: dict[str, Any],
        delay_ms: int | None = None,
    ) -> dramatiq.Message[Any]:
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=queue,
            actor_name=actor_name,
            args=(),
            kwargs={**kwargs, "correlation_id": correlation_id},
            options={"correlation_id": correlation_id, "idempotency_key": key},
            message_id=message_id_for(key),
        )
        self.broker.enqueue(message, delay=delay_ms)
        STEPS_ENQUEUED.labels(queue, actor_name).inc()
        logger.info("Enqueued %s for key %r (correlation %s)", actor_name, key, correlation_id)
        return message
