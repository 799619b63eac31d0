"""The `anthropic` provider: Claude through the official SDK's Messages API, with tool use.

Transport retries (429, 529, 5xx, connection errors, honouring `retry-after`) are the SDK's, set by
`max_retries` and `timeout`. What still fails is classified here, once: rate limits, overload, server
errors, connection errors and timeouts become `Unavailable` (the turn is retried later); bad
requests, bad credentials and missing access become `TurnFailed`. The only module with the SDK.
"""

from __future__ import annotations

import logging
from typing import Any

import anthropic

from agent.errors import TurnFailed, Unavailable
from agent.llm.base import (
    Completion,
    CompletionRequest,
    LLMMessage,
    TokenUsage,
    ToolCall,
    pair_tool_results,
    rejected,
    retry_after_seconds,
)
from agent.llm.observed import observed_completion

logger = logging.getLogger(__name__)


def classify_provider_error(error: Exception) -> Unavailable | TurnFailed:
    """Map an SDK error to the agent's vocabulary (the one place that knows the SDK's classes)."""
    if isinstance(error, anthropic.APITimeoutError):
        return Unavailable("The language model did not answer in time", reason="ProviderTimeout")
    if isinstance(error, anthropic.APIConnectionError):
        return Unavailable("The language model could not be reached", reason="ProviderUnreachable")
    if isinstance(error, anthropic.APIStatusError):
        wait = retry_after_seconds(error.response.headers)
        if isinstance(error, anthropic.RateLimitError):
            return Unavailable("The language model is rate-limited", wait, reason="ProviderRateLimited")
        if isinstance(error, anthropic.OverloadedError):
            return Unavailable("The language model is overloaded", wait, reason="ProviderOverloaded")
        if isinstance(error, anthropic.InternalServerError):
            return Unavailable(f"The language model failed with HTTP {error.status_code}", wait, reason="ProviderError")
        if error.status_code in (408, 409):
            return Unavailable(f"The language model failed with HTTP {error.status_code}", reason="ProviderError")
        return rejected(error.status_code, _detail(error))
    unreadable = f"The language model's answer could not be read: {type(error).__name__}"
    return TurnFailed("ProviderResponseInvalid", unreadable)


def _detail(error: anthropic.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])[:300]
    return str(error.message)[:300]


def to_wire(messages: tuple[LLMMessage, ...]) -> list[dict[str, Any]]:
    """Neutral messages → Messages API messages: alternating roles, tool results batched in a user turn."""
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for group in pair_tool_results(messages):
        first = group[0]
        if first.role == "tool":
            add(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": m.tool_call_id,
                        "content": m.text or "(empty)",
                        "is_error": m.is_error,
                    }
                    for m in group
                ],
            )
        elif first.role == "user":
            add("user", [{"type": "text", "text": first.text}])
        else:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": first.text}] if first.text else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in first.tool_calls]
            if blocks:
                add("assistant", blocks)
    while out and out[0]["role"] != "user":
        out.pop(0)
    return out


class AnthropicProvider:
    """Claude via `anthropic.AsyncAnthropic`."""

    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        timeout_seconds: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        self.model = model
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_seconds, max_retries=max_retries
        )

    @observed_completion
    async def complete(self, request: CompletionRequest) -> Completion:
        tools = [{"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in request.tools]
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "system": request.system,
            "messages": to_wire(request.messages),
        }
        if tools:
            kwargs["tools"] = tools
        try:
            response = await self.client.messages.create(**kwargs)
        except anthropic.AnthropicError as error:
            classified = classify_provider_error(error)
            logger.warning("Anthropic call failed: %s (%s)", classified.reason, type(error).__name__)
            raise classified from error
        text_parts: list[str] = []
        calls: list[ToolCall] = []
        for block in response.content:
            if block.type == "text":
                text_parts.append(block.text)
            elif block.type == "tool_use":
                arguments = block.input if isinstance(block.input, dict) else {}
                calls.append(ToolCall(id=block.id, name=block.name, arguments=arguments))
        usage = TokenUsage(input_tokens=response.usage.input_tokens, output_tokens=response.usage.output_tokens)
        return Completion(
            text="\n".join(text_parts).strip(),
            tool_calls=calls,
            stop_reason=str(response.stop_reason or "end_turn"),
            usage=usage,
        )

    async def aclose(self) -> None:
        await self.client.close()
