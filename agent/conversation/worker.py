"""Answering a Conversation's turns in order, exactly once, whichever worker gets the message.

`TurnWorker.handle` is what the `answer_turn` actor runs. It takes the conversation's lock (a
PostgreSQL advisory lock held by a transaction, so a killed worker releases it), answers every due
message of `spec.messages` whose id is not in `status.answeredMessages`, in order, and writes each
answer (with its id) to the Conversation's status with an optimistic-concurrency patch. The turn log
in PostgreSQL holds each id's answer, so a message answered before a crash is replayed, not asked
again. If another worker holds the lock it returns at once: the holder re-reads the object after
releasing, so nothing appended meanwhile is missed. A provider outage delays the turn (attempts
and next try in `chat_turns`, a delayed re-enqueue, and a reply saying so); after `turn_max_attempts`
the turn is answered as failed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from agent.chat.models import TurnState
from agent.chat.turnlog import TurnLog, due
from agent.conversation.engine import Engine, TurnRequest
from agent.conversation.failureevents import post_turn_failed
from agent.conversation.status import answered_status, delayed_status, invalid, replying_status, unanswered
from agent.errors import Unavailable
from controller.api.conversation import (
    MAX_REPLY_CHARS,
    REPLYING,
    ChatMessage,
    Conversation,
)
from controller.api.kinds import CONVERSATION
from controller.api.meta import ConditionStatus
from controller.kube.client import ApiClient, CustomObjects, KubeError
from controller.kube.coreapps import CoreApps
from controller.storage.db import Pool
from controller.telemetry.scopes import mark_turn, traced_turn
from controller.telemetry.tracing import bind_correlation

logger = logging.getLogger(__name__)

#: Schedules a delayed try of a turn: (namespace, name, uid, message_id, correlation_id, delay_ms, attempt).
RetryScheduler = Callable[[str, str, str, str, str, int, int], None]


def lock_key(uid: str) -> int:
    """A 64-bit advisory-lock key for a conversation."""
    return int.from_bytes(hashlib.sha256(f"chat:{uid}".encode()).digest()[:8], "big", signed=True)


@asynccontextmanager
async def conversation_lock(pool: Pool, uid: str) -> AsyncIterator[bool]:
    """Hold the conversation's lock for the block if nobody else does; yields whether it is held."""
    async with pool.connection() as conn, conn.transaction():
        row = await (await conn.execute("SELECT pg_try_advisory_xact_lock(%s) AS held", (lock_key(uid),))).fetchone()
        yield bool(row and row["held"])


class TurnWorker:
    """Answers conversations (see the module docstring)."""

    def __init__(
        self,
        *,
        engine: Engine,
        turnlog: TurnLog,
        pool: Pool,
        api_client: ApiClient,
        schedule_retry: RetryScheduler,
        clock: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.turnlog = turnlog
        self.pool = pool
        self.objects = CustomObjects(api_client)
        self.core = CoreApps(api_client)
        self.schedule_retry = schedule_retry
        self.clock = clock
        self.settings = engine.settings

    async def read(self, namespace: str, name: str) -> Conversation | None:
        return await self.objects.find(Conversation, namespace, name)

    async def patch_status(
        self, conversation: Conversation, build: Callable[[Conversation], dict[str, Any] | None]
    ) -> Conversation | None:
        """Patch status with `build(current)` under a resourceVersion precondition; re-read and retry on 409."""
        namespace, name = conversation.metadata.namespace or "default", conversation.metadata.name
        current: Conversation | None = conversation
        for _ in range(8):
            assert current is not None
            status = build(current)
            if status is None:
                return current
            try:
                raw = await self.objects.patch_status(
                    CONVERSATION, namespace, name, status, resource_version=current.metadata.resource_version
                )
                return Conversation.from_body(raw)
            except KubeError as error:
                if error.not_found:
                    return None
                if not error.conflict:
                    raise
            current = await self.read(namespace, name)
            if current is None:
                return None
        raise RuntimeError(f"Conversation {namespace}/{name} kept changing; status not written")

    async def handle(self, namespace: str, name: str, uid: str, correlation_id: str) -> None:
        """Answer everything due in the conversation, in order; return early if another worker is on it."""
        while True:
            async with conversation_lock(self.pool, uid) as held:
                if not held:
                    logger.debug("Conversation %s/%s is being answered elsewhere", namespace, name)
                    return
                await self._drain(namespace, name, uid, correlation_id)
            conversation = await self.read(namespace, name)
            if conversation is None or not await self._due(conversation, uid):
                return

    async def _due(self, conversation: Conversation, uid: str) -> bool:
        waiting = unanswered(conversation)
        if conversation.metadata.uid != uid or invalid(conversation) or not waiting:
            return False
        turn = await self.turnlog.get_turn(uid, waiting[0].id)
        return due(turn, self.clock())

    async def _drain(self, namespace: str, name: str, uid: str, correlation_id: str) -> None:
        while True:
            conversation = await self.read(namespace, name)
            if conversation is None or not await self._due(conversation, uid):
                return
            if not await self._answer(conversation, uid, correlation_id):
                return

    @traced_turn
    async def _answer(self, conversation: Conversation, uid: str, fallback_correlation: str) -> bool:
        """Answer the next message; False when the turn was delayed (stop draining)."""
        message: ChatMessage = unanswered(conversation)[0]
        correlation_id = conversation.correlation_id or conversation.spec.correlation_id or fallback_correlation
        bind_correlation(correlation_id)
        previous = await self.turnlog.get_turn(uid, message.id)
        attempt = (previous.attempts if previous else 0) + 1
        request = TurnRequest(
            conversation_uid=uid,
            namespace=conversation.metadata.namespace or "default",
            name=conversation.metadata.name,
            user=conversation.spec.user,
            correlation_id=correlation_id,
            message_id=message.id,
            text=message.text,
            pending=conversation.status.pending,
            llm=conversation.spec.llm,
        )
        await self.engine.ensure_conversation(request)
        await self.turnlog.save_turn(
            TurnState(
                conversation_id=uid,
                message_id=message.id,
                state="running",
                attempts=attempt,
                correlation_id=correlation_id,
            )
        )
        await self.engine.stream.started(request, attempt)
        if not conversation.status.conditions or not any(
            c.type == REPLYING and c.status is ConditionStatus.TRUE for c in conversation.status.conditions
        ):
            updated = await self.patch_status(conversation, lambda c: replying_status(c, message.id, self.clock()))
            if updated is None:
                return False
            conversation = updated
        logger.info(
            "Answering message %r of Conversation %s/%s (attempt %d, correlation %s)",
            message.id,
            request.namespace,
            request.name,
            attempt,
            correlation_id,
        )
        try:
            if previous is not None and previous.state == "running" and attempt > self.settings.turn_max_attempts:
                result = await self.engine.give_up_crashed(request, previous.attempts)
            else:
                result = await self.engine.run_turn(request)
        except Unavailable as error:
            if attempt < self.settings.turn_max_attempts:
                await self._delay(conversation, request, error, attempt)
                return False
            result = await self.engine.give_up(request, error, attempt)
        mark_turn(outcome="failed" if result.failure else "answered")
        await self.turnlog.save_turn(
            TurnState(
                conversation_id=uid,
                message_id=message.id,
                state="failed" if result.failure else "answered",
                attempts=attempt,
                correlation_id=correlation_id,
                error_reason=result.failure.reason if result.failure else None,
                error_message=str(result.failure) if result.failure else None,
            )
        )
        await self.patch_status(
            conversation, lambda c: answered_status(c, message, result, correlation_id, self.clock())
        )
        await self.engine.stream.answered(request, result)
        if result.failure is not None:
            await post_turn_failed(self.core, conversation, message.id, result.failure, correlation_id, self.clock())
        logger.info(
            "Answered message %r of Conversation %s/%s (correlation %s)",
            message.id,
            request.namespace,
            request.name,
            correlation_id,
        )
        return True

    async def _delay(self, conversation: Conversation, request: TurnRequest, error: Unavailable, attempt: int) -> None:
        delay_ms = self.settings.backoff_ms(attempt)
        if error.retry_after_seconds is not None:
            delay_ms = min(self.settings.turn_max_backoff_ms, max(delay_ms, int(error.retry_after_seconds * 1000)))
        next_at = self.clock() + timedelta(milliseconds=delay_ms)
        await self.turnlog.save_turn(
            TurnState(
                conversation_id=request.conversation_uid,
                message_id=request.message_id,
                state="delayed",
                attempts=attempt,
                next_attempt_at=next_at,
                error_reason=error.reason,
                error_message=str(error),
                correlation_id=request.correlation_id,
            )
        )
        reply = (
            f"I am delayed: {error}. I will try again in {max(1, round(delay_ms / 1000))} s "
            f"(attempt {attempt} of {self.settings.turn_max_attempts})."
        )[:MAX_REPLY_CHARS]
        await self.patch_status(
            conversation, lambda c: delayed_status(c, request.message_id, error.reason, reply, self.clock())
        )
        await self.engine.stream.delayed(request, error.reason, reply, attempt, next_at)
        self.schedule_retry(
            request.namespace,
            request.name,
            request.conversation_uid,
            request.message_id,
            request.correlation_id,
            delay_ms,
            attempt,
        )
        logger.warning(
            "Delayed message %r of Conversation %s/%s by %d ms: %s (correlation %s)",
            request.message_id,
            request.namespace,
            request.name,
            delay_ms,
            error.reason,
            request.correlation_id,
        )
