"""The Event a turn that failed for good posts on its Conversation, once per message.

`kubectl describe conv` and `kubectl get events` then show it next to the `Failed` condition. The
Event's name is derived from the conversation and the message id, so a redelivered turn posts
nothing twice; posting is best effort (the condition, the reply and the turn log are the record).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from agent.errors import TurnFailed
from controller.api.conversation import Conversation
from controller.api.group import GROUP, VERSION
from controller.kube.client import KubeError
from controller.kube.coreapps import CoreApps

logger = logging.getLogger(__name__)


def event_body(
    conversation: Conversation, message_id: str, failure: TurnFailed, correlation_id: str, now: datetime
) -> dict[str, Any]:
    meta = conversation.metadata
    namespace = meta.namespace or "default"
    digest = hashlib.sha256(f"{meta.uid}/{message_id}".encode()).hexdigest()[:12]
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta.name}.turn-failed-{digest}", "namespace": namespace},
        "involvedObject": {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Conversation",
            "namespace": namespace,
            "name": meta.name,
            **({"uid": meta.uid} if meta.uid else {}),
        },
        "reason": "TurnFailed",
        "message": f"Message {message_id} could not be answered: {failure.reason}: {failure} "
        f"[correlation {correlation_id}]"[:1024],
        "type": "Warning",
        "source": {"component": "ringpilot-worker"},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def post_turn_failed(
    core: CoreApps, conversation: Conversation, message_id: str, failure: TurnFailed, correlation_id: str, now: datetime
) -> None:
    """Post the TurnFailed Event (a second post of the same message is a 409, ignored)."""
    body = event_body(conversation, message_id, failure, correlation_id, now)
    try:
        await core.create_event(body["metadata"]["namespace"], body)
    except KubeError as error:
        if not error.conflict:
            logger.warning(
                "Could not post TurnFailed on Conversation %s (correlation %s): %s",
                conversation.metadata.name,
                correlation_id,
                error,
            )
