"""The values of chat state: sessions, messages as stored, and the context a turn is built from.

Messages keep one JSON `content` per role: a user turn `{"text"}`; an assistant round `{"text",
"tool_calls", "usage", "meta", "final"}` (the final one also carries `pending`, `resources` and, if
the turn failed, `error`); a tool result `{"tool_call_id", "name", "text", "is_error", "outcome"}`.
These models are what `ChatStateManager` returns and what the Redis cache holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.llm.base import LLMMessage, ToolCall

MessageRole = Literal["user", "assistant", "tool"]


class ConversationSession(BaseModel):
    """One conversation as stored."""

    model_config = ConfigDict(frozen=True)

    id: str
    user_id: str
    correlation_id: str
    namespace: str = ""
    name: str = ""
    created_at: datetime | None = None


class ConversationMessage(BaseModel):
    """A message to add to a conversation."""

    model_config = ConfigDict(frozen=True)

    role: MessageRole
    content: dict[str, Any]
    message_id: str | None = Field(None, description="Unique per conversation; a second add with it is a no-op")
    turn_id: str | None = Field(None, description="The user turn an assistant or tool message belongs to")
    correlation_id: str | None = None

    @property
    def text(self) -> str:
        return str(self.content.get("text") or "")


class StoredMessage(ConversationMessage):
    """A message as stored, with its position in the conversation."""

    seq: int
    created_at: datetime | None = None
    existed: bool = Field(False, exclude=True, description="True when add_message found it already stored")

    def to_llm(self) -> LLMMessage:
        """The neutral form the providers take."""
        c = self.content
        if self.role == "tool":
            return LLMMessage(
                role="tool",
                text=self.text,
                tool_call_id=c.get("tool_call_id"),
                tool_name=c.get("name"),
                is_error=bool(c.get("is_error")),
            )
        calls = [ToolCall.model_validate(call) for call in c.get("tool_calls") or []]
        return LLMMessage(role=self.role, text=self.text, tool_calls=calls, meta=dict(c.get("meta") or {}))


class ResourceNote(BaseModel):
    """A custom resource the conversation created."""

    kind: str
    namespace: str
    name: str
    created_at: datetime | None = None


class ErrorNote(BaseModel):
    """A recent failure in the conversation (a turn or a tool)."""

    at: datetime | None = None
    source: str
    message: str


class ConversationContext(BaseModel):
    """What a turn knows: the last messages, the user's role and permissions,
    in-flight work and recent errors."""

    conversation_id: str
    user_id: str
    correlation_id: str
    role: str
    permissions: list[str]
    messages: list[StoredMessage]
    in_flight: list[ResourceNote] = Field(default_factory=list)
    recent_errors: list[ErrorNote] = Field(default_factory=list)
    last_seq: int = 0
    source: Literal["redis", "postgresql"] = "postgresql"


class TurnState(BaseModel):
    """Progress of one user turn: attempts, when to try again, the last error."""

    conversation_id: str
    message_id: str
    state: Literal["running", "delayed", "answered", "failed"]
    attempts: int = 0
    next_attempt_at: datetime | None = None
    error_reason: str | None = None
    error_message: str | None = None
    correlation_id: str
