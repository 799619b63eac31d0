"""Writing Conversations for the gateway: create one, append a user turn exactly once.

`append_turn` is idempotent on the message id, the client's key: an id already in `spec.messages`
with the same text is the earlier answer (no second turn), with other text a 409. A new turn is
appended with a merge patch under the resourceVersion it was checked against, re-checked on a
conflict, so two replicas posting at once neither lose nor duplicate a turn. The admission webhook
keeps `spec.messages` append-only behind this.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from agent.gateway.errors import GatewayError, not_found
from controller.api.conversation import MAX_MESSAGES, ChatMessage, Conversation, LLMRef
from controller.api.group import API_VERSION
from controller.api.kinds import CONVERSATION
from controller.api.labels import CORRELATION_LABEL
from controller.api.meta import new_correlation_id
from controller.kube.client import CustomObjects, Json, KubeError

ATTEMPTS = 6


def new_name() -> str:
    return f"chat-{secrets.token_hex(5)}"


def new_message_id() -> str:
    return f"m-{secrets.token_hex(6)}"


def conversation_body(
    name: str, namespace: str, user: str, correlation_id: str, first: ChatMessage | None, llm: LLMRef | None
) -> Json:
    spec: Json = {"user": user, "messages": [first.to_wire()] if first else [], "correlationId": correlation_id}
    if llm is not None:
        spec["llm"] = llm.to_wire()
    return {
        "apiVersion": API_VERSION,
        "kind": CONVERSATION.kind,
        "metadata": {"name": name, "namespace": namespace, "labels": {CORRELATION_LABEL: correlation_id}},
        "spec": spec,
    }


async def create_conversation(
    objects: CustomObjects, namespace: str, user: str, first: ChatMessage | None, llm: LLMRef | None
) -> Conversation:
    """A new Conversation of `user` (named by the gateway, stamped by the webhook for everyone else)."""
    body = conversation_body(new_name(), namespace, user, new_correlation_id(), first, llm)
    return Conversation.from_body(await objects.create_raw(CONVERSATION, namespace, body))


@dataclass(frozen=True)
class Appended:
    """A turn as stored, and whether this call appended it (False: an earlier call with the same id did)."""

    conversation: Conversation
    message: ChatMessage
    new: bool


def _existing(conversation: Conversation, message: ChatMessage) -> ChatMessage | None:
    found = next((m for m in conversation.spec.messages if m.id == message.id), None)
    if found is not None and found.text != message.text:
        raise GatewayError(409, f"Message id {message.id} was already used with other text", field="id")
    return found


async def append_turn(objects: CustomObjects, conversation: Conversation, message: ChatMessage) -> Appended:
    """Append `message` once (see the module docstring)."""
    namespace, name = conversation.metadata.namespace or "default", conversation.metadata.name
    current: Conversation | None = conversation
    for _ in range(ATTEMPTS):
        if current is None:
            raise not_found(f"Conversation {namespace}/{name}")
        if _existing(current, message) is not None:
            return Appended(current, message, False)
        messages = current.spec.messages
        if len(messages) >= MAX_MESSAGES:
            raise GatewayError(
                422, f"The conversation holds its limit of {MAX_MESSAGES} messages; start a new one", field="text"
            )
        body = {
            "metadata": {"resourceVersion": current.metadata.resource_version},
            "spec": {"messages": [m.to_wire() for m in messages] + [message.to_wire()]},
        }
        try:
            raw = await objects.patch(CONVERSATION, namespace, name, body)
            return Appended(Conversation.from_body(raw), message, True)
        except KubeError as error:
            if not error.conflict:
                raise
        current = await objects.find(Conversation, namespace, name)
    raise GatewayError(409, f"Conversation {namespace}/{name} kept changing; try again", field="spec.messages")
