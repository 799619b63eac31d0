"""The provider protocol and the provider-neutral values that cross it.

The engine speaks only these types: a `CompletionRequest` (system prompt, neutral messages, tool
specs) in, a `Completion` (text, tool calls, usage) out. Each provider module translates them to
its wire format (Anthropic Messages, OpenAI chat completions, or the offline router) and classifies
its errors once into `agent.errors.Unavailable` or `agent.errors.TurnFailed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from agent.errors import TurnFailed

Role = Literal["user", "assistant", "tool"]


class ToolCall(BaseModel):
    """One call of a tool, as the model asked for it."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="The provider's id of the call; tool results refer to it")
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class LLMMessage(BaseModel):
    """One message of the conversation in neutral form.

    `meta` is for the engine and the offline router (e.g. which entity the router asked for); it is
    never sent to a remote provider.
    """

    model_config = ConfigDict(frozen=True)

    role: Role
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False
    meta: dict[str, Any] = Field(default_factory=dict)


class TokenUsage(BaseModel):
    """Tokens one model call consumed."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


@dataclass(frozen=True)
class ToolSpec:
    """What the model sees of a tool: its name, description and the JSON schema of its input."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class CompletionRequest:
    """One call to the model: the system prompt, the history and the tools it may call.

    `facts` carries what the offline router needs about the asker (role, permissions, known apps);
    remote providers see the same facts through the system prompt.
    """

    system: str
    messages: tuple[LLMMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int = 1024
    facts: dict[str, Any] = field(default_factory=dict)


class Completion(BaseModel):
    """The model's answer to one request."""

    model_config = ConfigDict(frozen=True)

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    stop_reason: str = "end_turn"
    usage: TokenUsage = Field(default_factory=TokenUsage)
    meta: dict[str, Any] = Field(default_factory=dict)


class LLMProvider(Protocol):
    """A language model (or the offline router) that answers a `CompletionRequest`."""

    name: str
    model: str

    async def complete(self, request: CompletionRequest) -> Completion:
        """Answer the request; raise `Unavailable` (retry later) or `TurnFailed` (permanent)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def pair_tool_results(messages: tuple[LLMMessage, ...]) -> list[list[LLMMessage]]:
    """Group messages so each assistant turn's tool results form one batch (providers need that shape).

    Consecutive `tool` messages become one group; every other message is a group of its own.
    """
    groups: list[list[LLMMessage]] = []
    for message in messages:
        if message.role == "tool" and groups and groups[-1][0].role == "tool":
            groups[-1].append(message)
        else:
            groups.append([message])
    return groups


def retry_after_seconds(headers: Any) -> float | None:
    """The server's requested wait from `retry-after-ms` or `retry-after` (None when absent or unreadable)."""
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        if "retry-after" in headers:
            return float(headers["retry-after"])
    except ValueError:
        return None
    return None


def rejected(status: int, detail: str) -> TurnFailed:
    """A permanent refusal by the provider, worded the same for every provider."""
    if status == 401:
        return TurnFailed("ProviderAuthenticationFailed", "The language model refused the API key (HTTP 401)")
    if status == 403:
        return TurnFailed("ProviderPermissionDenied", "The API key may not use this model (HTTP 403)")
    return TurnFailed("ProviderRejected", f"The language model rejected the request (HTTP {status}): {detail}")
