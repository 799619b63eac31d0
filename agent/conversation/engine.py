"""The conversation engine: one user turn, from the stored context to the reply.

`Engine.run_turn` stores the user message, then either settles a pending proposal in code ("yes"
runs it through the registry as the user, "no" drops it; the model is never asked) or runs the
bounded tool loop: call the provider, store the assistant round, route each tool call through the
registry, store each result, until the model answers or the round limit is hit. Every round is in
PostgreSQL before the next step, so a retried turn resumes where it stopped and a confirmed action
runs once. Transient provider errors propagate as `Unavailable` (the caller delays the turn);
permanent ones end the turn with a `failure`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from agent.chat.events import EventLog
from agent.chat.models import ConversationMessage, MessageRole, StoredMessage
from agent.chat.state import ChatStateManager
from agent.chat.turnlog import TurnLog
from agent.conversation.confirming import confirmation_of
from agent.conversation.fallback import note, offline_answer
from agent.conversation.following import failure_notices
from agent.conversation.prompting import earlier_turns, system_prompt, this_turn
from agent.conversation.turnevents import TurnEvents
from agent.errors import TurnFailed, Unavailable
from agent.health.breakers import BreakerBoard
from agent.llm.base import Completion, CompletionRequest, LLMProvider, TokenUsage, ToolCall
from agent.llm.choosing import ProviderFactory
from agent.settings import AgentSettings
from agent.tools.base import ToolContext, ToolOutput, ToolServices
from agent.tools.registry import Invocation, ToolRegistry
from controller.api.conversation import LLMRef, PendingAction, ResourceRef
from controller.api.policy import Policy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnRequest:
    """One user turn to answer."""

    conversation_uid: str
    namespace: str
    name: str
    user: str
    correlation_id: str
    message_id: str
    text: str
    pending: PendingAction | None = None
    llm: LLMRef | None = None
    notice: str = ""  # what the reply tells first (tasks this conversation created that failed) ...
    told: tuple[str, ...] = ()  # ... and their names


@dataclass(frozen=True)
class TurnResult:
    """The answer to a turn: the reply, the proposal now pending, resources created, tokens spent."""

    reply: str
    pending: PendingAction | None = None
    resources: tuple[ResourceRef, ...] = ()
    usage: TokenUsage = field(default_factory=TokenUsage)
    failure: TurnFailed | None = None
    conflict: bool = False


def _result(final: StoredMessage, usage: TokenUsage, conflict: bool) -> TurnResult:
    c = final.content
    error = c.get("error")
    return TurnResult(
        reply=final.text,
        pending=PendingAction.model_validate(c["pending"]) if c.get("pending") else None,
        resources=tuple(ResourceRef.model_validate(r) for r in c.get("resources") or []),
        usage=usage,
        failure=TurnFailed(error["reason"], error["message"]) if error else None,
        conflict=conflict,
    )


def _usage(stored: list[StoredMessage]) -> TokenUsage:
    total = TokenUsage()
    for message in stored:
        if message.role == "assistant" and message.content.get("usage"):
            total = total + TokenUsage.model_validate(message.content["usage"])
    return total


class Engine:
    """Answers turns (see the module docstring)."""

    def __init__(
        self,
        *,
        chat: ChatStateManager,
        turnlog: TurnLog,
        registry: ToolRegistry,
        providers: ProviderFactory,
        services: ToolServices,
        settings: AgentSettings,
        breakers: BreakerBoard | None = None,
        events: EventLog | None = None,
    ) -> None:
        self.chat = chat
        self.stream = TurnEvents(events)
        self.turnlog = turnlog
        self.registry = registry
        self.providers = providers
        self.services = services
        self.settings = settings
        self.breakers = breakers
        self._known: set[str] = set()

    @property
    def policy(self) -> Policy:
        return self.services.policy

    def tool_context(self, req: TurnRequest) -> ToolContext:
        return ToolContext(
            user=req.user,
            role=self.policy.role_for(req.user),
            permissions=self.policy.permissions_for(req.user),
            correlation_id=req.correlation_id,
            namespace=req.namespace,
            conversation=req.name,
            conversation_uid=req.conversation_uid,
            services=self.services,
        )

    async def _store(self, req: TurnRequest, suffix: str, role: MessageRole, content: dict[str, Any]) -> StoredMessage:
        message = ConversationMessage(
            role=role,
            content=content,
            message_id=f"{req.message_id}~{suffix}",
            turn_id=req.message_id,
            correlation_id=req.correlation_id,
        )
        return await self.chat.add_message(req.conversation_uid, message)

    async def _finish(
        self,
        req: TurnRequest,
        text: str,
        usage: TokenUsage,
        *,
        pending: PendingAction | None = None,
        resources: tuple[ResourceRef, ...] = (),
        failure: TurnFailed | None = None,
        conflict: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> TurnResult:
        """Store the turn's final message (what a retry returns) and return the result."""
        text = f"{req.notice}\n\n{text}" if req.notice else text
        content: dict[str, Any] = {
            "text": text,
            "final": True,
            "tool_calls": [],
            "usage": {"input_tokens": 0, "output_tokens": 0},
            "pending": pending.to_wire() if pending else None,
            "resources": [r.to_wire() for r in resources],
            "meta": {**(meta or {}), **({"told": list(req.told)} if req.told else {})},
        }
        if failure is not None:
            content["error"] = {"reason": failure.reason, "message": str(failure)}
        await self._store(req, "final", "assistant", content)
        return TurnResult(text, pending, resources, usage, failure, conflict)

    async def ensure_conversation(self, req: TurnRequest) -> None:
        """Create the conversation's row on its first turn (remembered per process)."""
        if req.conversation_uid not in self._known:
            await self.chat.create_conversation(
                req.user,
                req.correlation_id,
                conversation_id=req.conversation_uid,
                namespace=req.namespace,
                name=req.name,
            )
            self._known.add(req.conversation_uid)

    async def give_up(self, req: TurnRequest, error: Unavailable, attempts: int) -> TurnResult:
        """End a turn whose provider stayed unavailable for every allowed try."""
        failure = TurnFailed(error.reason, f"The language model stayed unavailable after {attempts} tries: {error}")
        return await self._finish(req, f"I could not answer: {failure}.", TokenUsage(), failure=failure)

    async def give_up_crashed(self, req: TurnRequest, attempts: int) -> TurnResult:
        """End a turn that was started `attempts` times and never finished (a crash each time)."""
        stored = await self.chat.turn_messages(req.conversation_uid, req.message_id)
        final = next((m for m in stored if m.role == "assistant" and m.content.get("final")), None)
        if final is not None:
            return _result(final, _usage(stored), False)
        failure = TurnFailed("TurnAbandoned", f"The turn was started {attempts} times and never finished")
        return await self._finish(req, f"I could not answer: {failure}.", _usage(stored), failure=failure)

    async def run_turn(self, req: TurnRequest) -> TurnResult:
        """Answer one user turn (idempotent: a finished turn returns its stored answer)."""
        await self.ensure_conversation(req)
        user_message = await self.chat.add_message(
            req.conversation_uid,
            ConversationMessage(
                role="user",
                content={"text": req.text},
                message_id=req.message_id,
                turn_id=req.message_id,
                correlation_id=req.correlation_id,
            ),
        )
        conflict = user_message.existed and user_message.text != req.text
        text = user_message.text  # a reused id keeps its first text: nothing is overwritten
        stored = [m for m in await self.chat.turn_messages(req.conversation_uid, req.message_id) if m.role != "user"]
        final = next((m for m in stored if m.role == "assistant" and m.content.get("final")), None)
        if final is not None:
            return _result(final, _usage(stored), conflict)
        ctx = self.tool_context(req)
        notes = await failure_notices(self.turnlog, ctx, req.conversation_uid, req.message_id)
        req = replace(req, notice="\n".join(n for _, n in notes), told=tuple(name for name, _ in notes))
        if conflict:
            # The only place reused ids are detected: this table is the agent's (the worker names it in status).
            reused = f"Message id {req.message_id} reused with different text; stored text kept"
            await self.registry.audit(ctx, "MessageConflict", reused, {"messages": [req.message_id]})
        confirmation = confirmation_of(text, req.pending is not None)
        if confirmation is not None:
            return await self._confirm(req, ctx, confirmation, conflict)
        return await self._converse(req, ctx, text, stored, conflict)

    async def _record(self, req: TurnRequest, inv: Invocation) -> None:
        await self.turnlog.record_tool_call(
            req.conversation_uid,
            call_id=f"{req.message_id}/{inv.call.id}",
            turn_id=req.message_id,
            tool=inv.call.name,
            arguments=inv.call.arguments,
            permission=inv.permission,
            mutating=inv.mutating,
            outcome=inv.outcome,
            text=inv.output.text,
            duration_ms=inv.duration_ms,
            correlation_id=req.correlation_id,
        )

    async def _confirm(self, req: TurnRequest, ctx: ToolContext, yes: bool, conflict: bool) -> TurnResult:
        pending = req.pending
        if pending is None:
            text = "There is nothing waiting for your confirmation, so I did nothing."
            return await self._finish(req, text, TokenUsage(), conflict=conflict)
        if not yes:
            call = ToolCall(id=f"decline-{pending.id}", name=pending.tool, arguments=pending.arguments)
            await self._record(req, Invocation(call, "declined", ToolOutput(text=pending.summary), "none", True))
            detail = {"tool": pending.tool, "action": pending.id}
            await self.registry.audit(ctx, "ActionDeclined", pending.summary, detail)
            return await self._finish(req, f"OK, I did not {pending.summary}.", TokenUsage(), conflict=conflict)
        await self.stream.tool_started(req, ToolCall(id=f"confirm-{pending.id}", name=pending.tool), True)
        inv = await self.registry.execute(pending, ctx)
        await self._record(req, inv)
        await self.stream.tool_finished(req, inv)
        for ref in inv.output.resources:
            await self.turnlog.record_resource(req.conversation_uid, ref, req.correlation_id)
            await self.stream.resource_created(req, ref)
        text = inv.output.text if not inv.is_error else f"I could not do it: {inv.output.text}"
        return await self._finish(req, text, TokenUsage(), resources=inv.output.resources, conflict=conflict)

    async def _complete(self, provider: LLMProvider, request: CompletionRequest) -> Completion:
        """One provider call behind the provider's shared circuit breaker (the offline router has none)."""
        board = self.breakers if provider.name != "offline" else None
        if board is None:
            return await provider.complete(request)
        breaker = f"llm-{provider.name}"
        if not await board.allow(breaker):
            raise Unavailable(
                f"The {provider.name} circuit breaker is open",
                self.settings.breaker_reset_seconds,
                reason="ProviderCircuitOpen",
            )
        try:
            completion = await provider.complete(request)
        except Unavailable as error:
            await board.record_failure(breaker, f"{error.reason}: {error}")
            raise
        await board.record_success(breaker)
        return completion

    async def _facts(self, ctx: ToolContext) -> dict[str, Any]:
        apps: list[str] = []
        if self.services.known_apps is not None:
            try:
                apps = await self.services.known_apps()
            except Exception as error:  # the vocabulary is a hint; the router works without it
                logger.warning("Known apps unavailable (correlation %s): %s", ctx.correlation_id, type(error).__name__)
        return {"apps": apps, "denied_tools": self.registry.denied_for(ctx), "role": ctx.role.value}

    async def _converse(
        self, req: TurnRequest, ctx: ToolContext, text: str, stored: list[StoredMessage], conflict: bool
    ) -> TurnResult:
        try:
            provider = self.providers.get(req.llm)
        except TurnFailed as failure:
            return await self._finish(
                req, f"I could not answer: {failure}.", TokenUsage(), failure=failure, conflict=conflict
            )
        context = await self.chat.get_context(req.conversation_uid)
        history = earlier_turns(context, req.message_id)
        system = system_prompt(context)
        facts = await self._facts(ctx)
        usage = _usage(stored)
        rounds = sum(1 for m in stored if m.role == "assistant")
        proposals = [m.content["proposal"] for m in stored if m.role == "tool" and m.content.get("proposal")]
        summaries = [str(m.content.get("summary") or "") for m in stored if m.role == "tool"]
        answer: str | None = None
        fell_back = ""
        while answer is None:
            last = next((m for m in reversed(stored) if m.role == "assistant"), None)
            calls = [ToolCall.model_validate(c) for c in (last.content.get("tool_calls") or [])] if last else []
            done = {m.content.get("tool_call_id") for m in stored if m.role == "tool"}
            missing = [c for c in calls if c.id not in done]
            if missing:
                for index, call in enumerate(calls):
                    if call.id not in done:
                        tool = self.registry.tools.get(call.name)
                        await self.stream.tool_started(req, call, bool(tool and tool.mutating))
                        inv = await self.registry.invoke(call, ctx, turn_id=req.message_id, proposals=len(proposals))
                        await self._record(req, inv)
                        await self.stream.tool_finished(req, inv)
                        if inv.proposal is not None:
                            proposals.append(inv.proposal.to_wire())
                        summaries.append(inv.output.text)
                        stored.append(
                            await self._store(
                                req,
                                f"t{rounds}.{index}",
                                "tool",
                                {
                                    "tool_call_id": call.id,
                                    "name": call.name,
                                    "text": inv.output.for_model(),
                                    "summary": inv.output.text,
                                    "is_error": inv.is_error,
                                    "outcome": inv.outcome,
                                    "proposal": inv.proposal.to_wire() if inv.proposal else None,
                                },
                            )
                        )
                continue
            if rounds >= self.settings.llm_max_tool_rounds:
                answer = "\n\n".join(s for s in summaries if s) or (
                    f"I stopped after {rounds} tool rounds without an answer; please narrow the question."
                )
                break
            request = CompletionRequest(
                system=system,
                messages=tuple(history + this_turn(text, stored)),
                tools=self.registry.specs(),
                max_tokens=self.settings.llm_max_tokens,
                facts=facts,
            )
            try:
                completion = await self._complete(provider, request)
            except TurnFailed as failure:
                return await self._finish(
                    req, f"I could not answer: {failure}.", usage, failure=failure, conflict=conflict
                )
            except Unavailable as error:  # a read-only question gets the offline router's answer meanwhile
                provider, completion = await offline_answer(self.providers, self.registry, provider, request, error)
                fell_back = note(error)
            rounds += 1
            usage = usage + completion.usage
            stored.append(
                await self._store(
                    req,
                    f"a{rounds}",
                    "assistant",
                    {
                        "text": completion.text,
                        "tool_calls": [c.model_dump() for c in completion.tool_calls],
                        "usage": completion.usage.model_dump(),
                        "meta": completion.meta,
                        "final": False,
                        "stop_reason": completion.stop_reason,
                    },
                )
            )
            if not completion.tool_calls:
                answer = completion.text or "\n\n".join(s for s in summaries if s) or "Done."
        pending = PendingAction.model_validate(proposals[-1]) if proposals else None
        answer = f"{answer}\n\n{fell_back}" if fell_back else answer
        if pending is not None and pending.summary not in answer:
            answer += (
                f"\n\nWaiting for your confirmation: I will {pending.summary}. Reply yes to go ahead or no to cancel."
            )
        elif pending is None and req.pending is not None:
            answer += f"\n\n(I dropped the earlier proposal to {req.pending.summary}.)"
        last_meta = stored[-1].content.get("meta") if stored and stored[-1].role == "assistant" else None
        return await self._finish(req, answer, usage, pending=pending, conflict=conflict, meta=last_meta or {})
