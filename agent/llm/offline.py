"""The `offline` provider: the deterministic intent router behind the provider protocol.

The default when no key is configured: fast, explainable and air-gapped. On a user message it asks
the router for a tool call (or a question, or the list of what it can do); on tool results it
answers with the tools' own summaries. The router's pending question travels in the assistant
message's `meta`, so the next turn's answer completes the request.
"""

from __future__ import annotations

from agent.llm.base import Completion, CompletionRequest, LLMMessage, ToolCall
from agent.llm.observed import observed_completion
from agent.router.routing import route


def _awaiting(messages: tuple[LLMMessage, ...]) -> dict[str, object] | None:
    """The question the router asked in the assistant message just before the last user message."""
    if len(messages) >= 2 and messages[-2].role == "assistant":
        awaiting = messages[-2].meta.get("awaiting")
        return awaiting if isinstance(awaiting, dict) else None
    return None


class OfflineProvider:
    """Answers with the intent router (see the module docstring)."""

    name = "offline"

    def __init__(self, model: str = "offline-router-1") -> None:
        self.model = model

    @observed_completion
    async def complete(self, request: CompletionRequest) -> Completion:
        messages = request.messages
        if not messages:
            return Completion(text="What can I do for you?")
        last = messages[-1]
        if last.role == "tool":
            results: list[LLMMessage] = []
            for message in reversed(messages):
                if message.role != "tool":
                    break
                results.insert(0, message)
            text = "\n\n".join(str(m.meta.get("summary") or m.text) for m in results)
            return Completion(text=text, stop_reason="end_turn")
        if last.role == "assistant":
            return Completion(text=last.text or "Done.", stop_reason="end_turn")
        decision = route(
            last.text,
            known_apps=[str(a) for a in request.facts.get("apps", ())],
            awaiting=_awaiting(messages),
            denied_tools=[str(t) for t in request.facts.get("denied_tools", ())],
        )
        intent = decision.intent.value if decision.intent else None
        if decision.tool is not None:
            call = ToolCall(id="offline-1", name=decision.tool, arguments=decision.arguments)
            return Completion(tool_calls=[call], stop_reason="tool_use", meta={"intent": intent})
        meta: dict[str, object] = {"intent": intent}
        if decision.awaiting is not None:
            meta["awaiting"] = decision.awaiting
        return Completion(text=decision.text, stop_reason="end_turn", meta=meta)

    async def aclose(self) -> None:
        return None
