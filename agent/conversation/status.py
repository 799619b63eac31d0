"""The Conversation status a worker writes: pure functions from the object as read to a status patch.

The worker owns `answered`, `answeredMessages` (the answered ids, bounded: every one still in the
spec, then the latest removed), `lastAnsweredId`, `reply`, `pending`, `resources`, `usage` and the
turn conditions `Ready`, `Replying`, `Failed` and `MessageConflict` (a reused message id the engine
found while storing the turn). The controller's `InvalidSpec` is kept as it is: the worker writes the list
under a resourceVersion precondition, and the controller sets only its own types on the fresh object.
Each function returns None when there is nothing to write (e.g. another worker answered that message).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.conversation.engine import TurnResult
from controller.api.conversation import (
    FAILED,
    MAX_MESSAGES,
    MAX_REPLY_CHARS,
    MESSAGE_CONFLICT,
    READY,
    REPLYING,
    AnsweredMessage,
    ChatMessage,
    Conversation,
    ResourceRef,
    message_digest,
)
from controller.api.meta import Condition
from controller.core.conditions import INVALID_SPEC, is_true, set_condition
from controller.core.conditions import make as condition

MAX_RESOURCES = 200


def set_conditions(current: list[Condition], *new: Condition) -> list[dict[str, Any]]:
    """`current` with each of `new` replacing its type, as the wire list to write."""
    out = list(current)
    for cond in new:
        out = set_condition(out, cond)
    return [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in out]


def invalid(conversation: Conversation) -> bool:
    return is_true(conversation.status.conditions, INVALID_SPEC)


def answered_ids(conversation: Conversation) -> set[str]:
    return {a.id for a in conversation.status.answered_messages}


def unanswered(conversation: Conversation) -> list[ChatMessage]:
    """The messages of the spec whose id has not been answered, in order."""
    done = answered_ids(conversation)
    return [m for m in conversation.spec.messages if m.id not in done]


def answered_summary(conversation: Conversation, message: ChatMessage) -> list[AnsweredMessage]:
    """The answered messages with `message` added: all still in the spec, then the latest removed ones."""
    entries = [
        *conversation.status.answered_messages,
        AnsweredMessage(id=message.id, digest=message_digest(message.text)),
    ]
    in_spec = {m.id for m in conversation.spec.messages}
    room = MAX_MESSAGES - sum(1 for e in entries if e.id in in_spec)
    removed = [e.id for e in entries if e.id not in in_spec]
    dropped = set(removed[: max(0, len(removed) - room)])
    return [e for e in entries if e.id not in dropped]


def _conflict(conversation: Conversation, message_id: str, result: TurnResult, now: datetime) -> list[Condition]:
    """MessageConflict while the answered message's id was reused with other text; cleared on the next turn."""
    generation = conversation.metadata.generation
    if result.conflict:
        text = f"Message id {message_id} was reused with different text; the text first stored is kept and answered"
        return [condition(MESSAGE_CONFLICT, True, "MessageIdReused", text, generation, now)]
    if is_true(conversation.status.conditions, MESSAGE_CONFLICT):
        return [condition(MESSAGE_CONFLICT, False, "NoConflict", "", generation, now)]
    return []


def replying_status(conversation: Conversation, message_id: str, now: datetime) -> dict[str, Any] | None:
    """Replying=True while a message is being answered."""
    generation = conversation.metadata.generation
    return {
        "conditions": set_conditions(
            conversation.status.conditions,
            condition(REPLYING, True, "Thinking", f"Answering message {message_id}", generation, now),
        )
    }


def delayed_status(
    conversation: Conversation, message_id: str, reason: str, reply: str, now: datetime
) -> dict[str, Any] | None:
    """The user is told the answer is delayed; Replying stays True with the provider's reason."""
    generation = conversation.metadata.generation
    return {
        "reply": reply,
        "conditions": set_conditions(
            conversation.status.conditions,
            condition(REPLYING, True, reason, f"Message {message_id} is delayed: {reply}", generation, now),
        ),
    }


def _resources(existing: list[ResourceRef], new: tuple[ResourceRef, ...]) -> list[dict[str, Any]]:
    merged = list(existing)
    for ref in new:
        if ref not in merged:
            merged.append(ref)
    return [r.to_wire() for r in merged[-MAX_RESOURCES:]]


def answered_status(
    conversation: Conversation, message: ChatMessage, result: TurnResult, correlation_id: str, now: datetime
) -> dict[str, Any] | None:
    """The answer to `message`: answered ids, reply, pending proposal, resources, usage and conditions."""
    status = conversation.status
    message_id = message.id
    if message_id in answered_ids(conversation):
        return None
    generation = conversation.metadata.generation
    summary = answered_summary(conversation, message)
    done = {e.id for e in summary}
    remaining = sum(1 for m in conversation.spec.messages if m.id not in done)
    usage = status.usage
    replying = (
        condition(REPLYING, True, "Queued", f"{remaining} more message(s) to answer", generation, now)
        if remaining > 0
        else condition(REPLYING, False, "Answered", f"Answered message {message_id}", generation, now)
    )
    if result.failure is not None:
        reason = result.failure.reason
        failed = condition(FAILED, True, reason, f"Message {message_id}: {result.failure}", generation, now)
        ready = condition(READY, False, reason, f"The last turn failed: {result.failure}", generation, now)
    else:
        failed = condition(FAILED, False, "Answered", f"Message {message_id} was answered", generation, now)
        ready = condition(READY, True, "Answered", f"Answered message {message_id}", generation, now)
    return {
        "answered": sum(1 for m in conversation.spec.messages if m.id in done),
        "answeredMessages": [e.to_wire() for e in summary],
        "lastAnsweredId": message_id,
        "reply": result.reply[:MAX_REPLY_CHARS],
        "pending": result.pending.to_wire() if result.pending else None,
        "resources": _resources(status.resources, result.resources),
        "usage": {
            "inputTokens": (usage.input_tokens if usage else 0) + result.usage.input_tokens,
            "outputTokens": (usage.output_tokens if usage else 0) + result.usage.output_tokens,
        },
        "correlationId": correlation_id,
        "conditions": set_conditions(
            status.conditions, replying, failed, ready, *_conflict(conversation, message_id, result, now)
        ),
    }
