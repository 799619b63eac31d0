"""The `openai` provider: any OpenAI-compatible chat-completions endpoint with tools, over aiohttp.

Works with a local model server (vLLM, llama.cpp, Ollama's /v1) so Ringpilot can run air-gapped.
Transport retries are ours and mirror the Anthropic SDK's: 408, 409, 429 and 5xx, connection errors
and timeouts are retried with exponential backoff (honouring `retry-after`/`retry-after-ms`);
what still fails is classified once into `Unavailable` or `TurnFailed`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any

import aiohttp

from agent.errors import TurnFailed, Unavailable
from agent.llm.base import (
    Completion,
    CompletionRequest,
    LLMMessage,
    TokenUsage,
    ToolCall,
    rejected,
    retry_after_seconds,
)
from agent.llm.observed import observed_completion

logger = logging.getLogger(__name__)

RETRYABLE = frozenset({408, 409, 429})
MAX_BACKOFF_SECONDS = 8.0


def to_wire(system: str, messages: tuple[LLMMessage, ...]) -> list[dict[str, Any]]:
    """Neutral messages → chat-completions messages (system first; tool results as `tool` messages)."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for m in messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.text or "(empty)"})
        elif m.role == "user":
            out.append({"role": "user", "content": m.text})
        elif m.text or m.tool_calls:
            entry: dict[str, Any] = {"role": "assistant", "content": m.text or None}
            if m.tool_calls:
                entry["tool_calls"] = [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                    for c in m.tool_calls
                ]
            out.append(entry)
    return out


def parse_completion(body: dict[str, Any]) -> Completion:
    """A chat-completions response body → `Completion`; a malformed body is a permanent failure."""
    try:
        choice = body["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as error:
        raise TurnFailed("ProviderResponseInvalid", "The language model's answer had no choices") from error
    calls: list[ToolCall] = []
    for raw in message.get("tool_calls") or []:
        function = raw.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except json.JSONDecodeError:
            arguments = {"invalid_json": str(function.get("arguments"))[:500]}
        if not isinstance(arguments, dict):
            arguments = {"invalid_json": str(arguments)[:500]}
        calls.append(
            ToolCall(id=str(raw.get("id") or f"call_{len(calls)}"), name=str(function.get("name")), arguments=arguments)
        )
    usage = body.get("usage") or {}
    return Completion(
        text=(message.get("content") or "").strip(),
        tool_calls=calls,
        stop_reason="tool_use" if calls else str(choice.get("finish_reason") or "stop"),
        usage=TokenUsage(
            input_tokens=int(usage.get("prompt_tokens") or 0), output_tokens=int(usage.get("completion_tokens") or 0)
        ),
    )


def _permanent(status: int, text: str) -> TurnFailed:
    detail = text[:300]
    try:
        parsed = json.loads(text)
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            detail = error["message"][:300]
    except json.JSONDecodeError:
        pass
    return rejected(status, detail)


class OpenAICompatibleProvider:
    """Chat completions with function tools against `base_url` (e.g. http://127.0.0.1:8000/v1)."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_seconds: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_retries = max_retries
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.headers = {"content-type": "application/json"}
        if api_key:
            self.headers["authorization"] = f"Bearer {api_key}"
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self.headers)
        return self._session

    def _body(self, request: CompletionRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": to_wire(request.system, request.messages),
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
                }
                for t in request.tools
            ]
            body["tool_choice"] = "auto"
        return body

    @observed_completion
    async def complete(self, request: CompletionRequest) -> Completion:
        body = self._body(request)
        last: Unavailable | None = None
        for attempt in range(self.max_retries + 1):
            retry_after: float | None = None
            try:
                async with self._client().post(self.url, json=body) as response:
                    text = await response.text()
                    if response.status == 200:
                        try:
                            return parse_completion(json.loads(text))
                        except json.JSONDecodeError as error:
                            raise TurnFailed(
                                "ProviderResponseInvalid", "The language model's answer was not JSON"
                            ) from error
                    if response.status not in RETRYABLE and response.status < 500:
                        logger.warning("Chat-completions call failed with HTTP %d", response.status)
                        raise _permanent(response.status, text)
                    retry_after = retry_after_seconds(response.headers)
                    reason = "ProviderRateLimited" if response.status == 429 else "ProviderError"
                    last = Unavailable(
                        f"The language model failed with HTTP {response.status}", retry_after, reason=reason
                    )
            except TimeoutError:
                last = Unavailable("The language model did not answer in time", reason="ProviderTimeout")
            except aiohttp.ClientError as error:
                reached = f"The language model could not be reached ({type(error).__name__})"
                last = Unavailable(reached, reason="ProviderUnreachable")
            if attempt < self.max_retries:
                delay = retry_after if retry_after is not None else min(MAX_BACKOFF_SECONDS, 0.5 * 2**attempt)
                await asyncio.sleep(delay * (1 if retry_after is not None else random.uniform(0.75, 1.0)))
        assert last is not None
        logger.warning("Chat-completions call failed after %d tries: %s", self.max_retries + 1, last.reason)
        raise last

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
