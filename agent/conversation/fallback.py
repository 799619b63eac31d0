"""Answering read-only questions with the offline router while the language model is unavailable.

When the configured provider is down (an `Unavailable`, its circuit breaker open included), the
turn asks the offline router instead. Its answer is used only if it reads: calls to tools that
change nothing, or a summary of tool results already gathered. Anything else (a deploy, a question
that leads to one) raises the provider's error again, so the turn is delayed as before.
"""

from __future__ import annotations

from agent.errors import Unavailable
from agent.llm.base import Completion, CompletionRequest, LLMProvider
from agent.llm.choosing import ProviderFactory
from agent.tools.registry import ToolRegistry
from controller.api.conversation import LLMRef, Provider

OFFLINE = LLMRef(provider=Provider.OFFLINE)


def note(error: Unavailable) -> str:
    """The line added to a reply the offline router gave in the model's place."""
    return (
        f"(The language model is unavailable ({error.reason}), so the offline router answered this read-only question.)"
    )


async def offline_answer(
    providers: ProviderFactory,
    registry: ToolRegistry,
    provider: LLMProvider,
    request: CompletionRequest,
    error: Unavailable,
) -> tuple[LLMProvider, Completion]:
    """The offline provider and its read-only answer to `request`; re-raises `error` when there is none."""
    if provider.name == "offline":
        raise error
    offline = providers.get(OFFLINE)
    completion = await offline.complete(request)
    summarising = not completion.tool_calls and bool(request.messages) and request.messages[-1].role == "tool"
    reading = bool(completion.tool_calls) and all(
        (tool := registry.tools.get(call.name)) is not None and not tool.mutating for call in completion.tool_calls
    )
    if not (summarising or reading):
        raise error
    return offline, completion
