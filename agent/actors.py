"""The agent's dramatiq actors: the only module of `agent` with @dramatiq.actor.

Loaded by `ringpilot worker` through the `ringpilot.actors` entry point, after
`controller.worker.boot` has set the Redis broker. The controller enqueues `answer_turn` by name
(it never imports this module); the message carries ids and the correlation ID, never text.
"""

from __future__ import annotations

import logging

import dramatiq

from agent.runtime import runtime
from controller.api.conversation import TURN_ACTOR, TURN_QUEUE

logger = logging.getLogger(__name__)


@dramatiq.actor(actor_name=TURN_ACTOR, queue_name=TURN_QUEUE, max_retries=5, min_backoff=200, max_backoff=5000)
def answer_turn(namespace: str, name: str, uid: str, message_id: str, correlation_id: str) -> None:
    """Answer Conversation `namespace/name` up to and including `message_id`, in order, exactly once."""
    logger.debug("Turn %r of Conversation %s/%s received (correlation %s)", message_id, namespace, name, correlation_id)
    runtime().answer(namespace, name, uid, correlation_id)
