"""The Conversation reconcile: admit the spec and enqueue a turn per unanswered message.

A message is answered when its id is in `status.answeredMessages` (the worker's summary of the turn
log), never by its position, so deleting or re-applying messages cannot hide a new one. Turns are
enqueued by actor name (`answer_turn` on the `turns` queue) with an idempotency key of conversation
uid and message id, so Kopf running twice or the resync timer re-enqueuing is harmless: the worker
answers in order and exactly once. `status.conditions` has two writers. The worker owns the turn
conditions (`Ready`, `Replying`, `Failed`, and `MessageConflict`: only the agent, which owns the
stored messages, can tell that an unanswered id was reused). This reconcile writes
`observedGeneration`, the correlation ID, `InvalidSpec` (with `Ready` when the spec is rejected or
accepted again) and `MessagesEdited` (an answered message removed from the spec, or its text
rewritten, named with an Event). It sets its conditions by type on the fresh object
(`Outcome.conditions`), never the whole list.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from controller.api.conversation import (
    MESSAGES_EDITED,
    READY,
    REPLYING,
    TURN_ACTOR,
    TURN_QUEUE,
    Conversation,
    message_digest,
)
from controller.api.kinds import KindInfo
from controller.api.meta import Condition
from controller.core import conditions
from controller.core.conditions import INVALID_SPEC, current_conditions
from controller.core.outcome import Admitted, EventNote, Outcome
from controller.reconcile.admission import admit, rejected
from controller.reconcile.deps import Deps

logger = logging.getLogger(__name__)

#: The condition types this reconcile writes (the rest of the list is the worker's).
OWNED = (INVALID_SPEC, READY, MESSAGES_EDITED)
#: How many message ids a MessagesEdited condition names before "and N more".
NAMED_IDS = 10


def own_conditions(conversation: Conversation, body: dict[str, Any], generation: int, now: datetime) -> list[Condition]:
    """The conditions this reconcile changes now: InvalidSpec cleared once fixed, first ones of an empty chat."""
    conds = current_conditions(body)
    if conditions.is_true(conds, INVALID_SPEC):
        return [
            conditions.make(INVALID_SPEC, False, "SpecValid", "", generation, now),
            conditions.make(READY, True, "Accepted", "Conversation accepted", generation, now),
        ]
    if not conds and not conversation.spec.messages:
        return [
            conditions.make(READY, True, "Accepted", "Waiting for the first message", generation, now),
            conditions.make(REPLYING, False, "Idle", "No message to answer", generation, now),
        ]
    return []


def _named(ids: list[str]) -> str:
    shown = ", ".join(ids[:NAMED_IDS])
    return shown + (f" and {len(ids) - NAMED_IDS} more" if len(ids) > NAMED_IDS else "")


def edited_condition(
    conversation: Conversation, body: dict[str, Any], generation: int, now: datetime
) -> Condition | None:
    """MessagesEdited naming answered messages removed or rewritten; None when the current one still holds."""
    texts = {m.id: m.text for m in conversation.spec.messages}
    answered = conversation.status.answered_messages
    removed = [a.id for a in answered if a.id not in texts]
    rewritten = [a.id for a in answered if a.id in texts and message_digest(texts[a.id]) != a.digest]
    parts = []
    if rewritten:
        parts.append(
            f"Answered message(s) {_named(rewritten)} rewritten in spec.messages; the first text was answered, "
            "send a new message id to ask again"
        )
    if removed:
        lead = "answered" if parts else "Answered"
        parts.append(f"{lead} message(s) {_named(removed)} removed from spec.messages; their answers are kept")
    current = conditions.find(current_conditions(body), MESSAGES_EDITED)
    if parts:
        reason = "MessageRewritten" if rewritten else "MessageRemoved"
        new = conditions.make(MESSAGES_EDITED, True, reason, "; ".join(parts), generation, now)
    elif current is not None and current.status.value == "True":
        new = conditions.make(
            MESSAGES_EDITED, False, "MessagesIntact", "Every answered message is as answered", generation, now
        )
    else:
        return None
    if current is not None and (current.status, current.reason, current.message) == (
        new.status,
        new.reason,
        new.message,
    ):
        return None
    return new


def _by_type(outcome: Outcome) -> Outcome:
    """A rejection's conditions (InvalidSpec, Ready), set by type instead of as the whole list."""
    status = dict(outcome.status)
    wire = status.pop("conditions", None) or []
    owned = tuple(Condition.model_validate(c) for c in wire if c.get("type") in OWNED)
    return replace(outcome, status=status, conditions=owned)


async def reconcile_conversation(info: KindInfo, body: dict[str, Any], deps: Deps, now: datetime) -> Outcome:
    """Level-based reconcile of one Conversation (see the module docstring)."""
    admitted = admit(info, body)
    if not isinstance(admitted, Admitted):
        return _by_type(rejected(info, body, admitted, now))
    conversation = admitted.resource
    assert isinstance(conversation, Conversation)
    meta = body.get("metadata") or {}
    uid, namespace, name = str(meta.get("uid") or ""), str(meta.get("namespace") or "default"), str(meta.get("name"))
    generation = int(meta.get("generation") or 0)
    answered = {a.id for a in conversation.status.answered_messages}
    desired: dict[str, Any] = {"observedGeneration": generation, "correlationId": admitted.correlation_id}
    status = conditions.delta(body.get("status") or {}, desired)
    unanswered = [m for m in conversation.spec.messages if m.id not in answered]
    if unanswered and deps.dispatcher is not None and uid:
        for message in unanswered:
            deps.dispatcher.enqueue(
                TURN_ACTOR,
                TURN_QUEUE,
                key=f"turn/{uid}/{message.id}",
                correlation_id=admitted.correlation_id,
                kwargs={"namespace": namespace, "name": name, "uid": uid, "message_id": message.id},
            )
        logger.info(
            "Enqueued %d turn(s) of Conversation %s/%s (correlation %s)",
            len(unanswered),
            namespace,
            name,
            admitted.correlation_id,
        )
    own = own_conditions(conversation, body, generation, now)
    edited = edited_condition(conversation, body, generation, now)
    events: tuple[EventNote, ...] = ()
    if edited is not None:
        own.append(edited)
        if edited.status.value == "True":
            events = (EventNote(edited.reason, edited.message, "Warning"),)
            logger.warning("Conversation %s/%s: %s", namespace, name, edited.message)
    return Outcome(status=status, labels=admitted.new_labels, events=events, conditions=tuple(own))
