"""The Conversation kind: one chat session between a user and Ringpilot.

Users (or the gateway) append turns to `spec.messages`; the controller answers them in order
and writes the last reply, the pending confirmation and the created resources into status.
The full transcript lives in PostgreSQL, never in the CR.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import Field, StringConstraints

from controller.api.meta import (
    CamelModel,
    Condition,
    CorrelationId,
    CustomResource,
    StatusModel,
    UserName,
)

MAX_MESSAGES = 200
MAX_MESSAGE_CHARS = 4000
MAX_REPLY_CHARS = 8000

#: The dramatiq actor that answers turns; the controller enqueues it by this name (it never imports agent).
TURN_ACTOR = "answer_turn"
#: The queue turns travel on (controller.messaging.broker declares it as TURNS_QUEUE).
TURN_QUEUE = "turns"

#: Condition types of a Conversation.
READY = "Ready"
REPLYING = "Replying"
FAILED = "Failed"
MESSAGE_CONFLICT = "MessageConflict"
#: Set by the controller: an answered message was removed from spec.messages or its text rewritten.
MESSAGES_EDITED = "MessagesEdited"

MessageId = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
]


class Provider(StrEnum):
    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    OFFLINE = "offline"


class ChatMessage(CamelModel):
    """One user turn."""

    id: MessageId = Field(description="Unique id of the message within the conversation; never reused.")
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, description="What the user said, in plain language.")


class LLMRef(CamelModel):
    """Which language model answers this conversation."""

    provider: Provider = Field(description="anthropic, openai (any compatible endpoint) or offline.")
    model: str | None = Field(None, max_length=128, description="Model id; the provider's default if unset.")


class ConversationSpec(CamelModel):
    """A chat session: user turns are appended to messages."""

    user: UserName = Field(description="The user speaking; set by the gateway or the admission webhook.")
    messages: list[ChatMessage] = Field(
        default_factory=list,
        max_length=MAX_MESSAGES,
        description="User turns, append-only. Each is answered once, in order.",
    )
    llm: LLMRef | None = Field(None, description="Overrides the model chosen by the settings.")
    correlation_id: CorrelationId | None = Field(
        None, description="Threads every turn, CR, log line and audit event; generated when absent."
    )


class PendingAction(StatusModel):
    """A mutating action proposed by the assistant, waiting for the user's yes or no."""

    id: str = Field(max_length=64, description="Id of the proposal.")
    tool: str = Field(max_length=64, description="The tool that will run on confirmation.")
    summary: str = Field(max_length=1024, description="What will happen, in one sentence.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="The tool's validated input.")
    message_id: str | None = Field(None, max_length=63, description="The user turn that led to it.")
    proposed_at: datetime | None = Field(None, description="When it was proposed.")


class ResourceRef(StatusModel):
    """A custom resource this conversation created."""

    kind: str = Field(max_length=64)
    name: str = Field(max_length=253)
    namespace: str | None = Field(None, max_length=63)


def message_digest(text: str) -> str:
    """A short digest of a message's text, kept with its id once answered (to spot a rewrite)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class AnsweredMessage(StatusModel):
    """A message that was answered: its id and the digest of the text that was answered."""

    id: str = Field(max_length=63, description="The message id.")
    digest: str = Field(max_length=16, description="sha256 of the text answered, first 16 hex digits.")


class Usage(StatusModel):
    """Tokens spent by the language model on this conversation."""

    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)


class ConversationStatus(StatusModel):
    """What the controller observed and answered."""

    observed_generation: int | None = Field(None, description="The generation this status describes.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready, Replying, Failed.")
    answered: int = Field(0, ge=0, description="How many of the messages now in spec.messages have been answered.")
    answered_messages: list[AnsweredMessage] = Field(
        default_factory=list,
        max_length=MAX_MESSAGES,
        description="Answered messages by id (those in spec.messages first, then the latest removed ones).",
    )
    last_answered_id: str | None = Field(None, max_length=63, description="Id of the last answered message.")
    reply: str | None = Field(None, max_length=MAX_REPLY_CHARS, description="The last assistant reply.")
    pending: PendingAction | None = Field(None, description="An action awaiting the user's confirmation.")
    resources: list[ResourceRef] = Field(
        default_factory=list, max_length=200, description="Custom resources this conversation created."
    )
    usage: Usage | None = Field(None, description="Token usage of the language model.")
    correlation_id: str | None = Field(None, max_length=63, description="The conversation's correlation ID.")


class Conversation(CustomResource[ConversationSpec, ConversationStatus]):
    kind: ClassVar[str] = "Conversation"
