"""The Conversation reconcile: admit the spec, spot reused message ids, and enqueue a turn per unanswered message.

Turns are enqueued by actor name (`answer_turn` on the `turns` queue) with an idempotency key of
conversation uid and message id, so Kopf running twice or the resync timer re-enqueuing is harmless:
the worker answers in order and exactly once. The worker writes the answer and the turn conditions
(`Ready`, `Replying`, `Failed`); this reconcile writes only what it owns: `observedGeneration`, the
correlation ID, `InvalidSpec` (through admission) and `MessageConflict` (a message id whose text
changed after it was stored: the stored text is kept and the condition names the id).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from controller.api.conversation import MESSAGE_CONFLICT, READY, REPLYING, TURN_ACTOR, TURN_QUEUE, Conversation
from controller.api.identity import SYSTEM_USER
from controller.api.kinds import KindInfo
from controller.api.meta import Condition, ConditionStatus
from controller.core import conditions
from controller.core.conditions import INVALID_SPEC, current_conditions
from controller.core.outcome import Admitted, AuditNote, EventNote, Outcome
from controller.reconcile.admission import admit, rejected
from controller.reconcile.deps import Deps

logger = logging.getLogger(__name__)

_STORED_TEXTS = """
SELECT message_id, content ->> 'text' AS text FROM messages
WHERE conversation_id = %s AND role = 'user' AND message_id = ANY(%s)
"""


async def stored_texts(deps: Deps, uid: str, ids: list[str]) -> dict[str, str]:
    """Text stored in PostgreSQL for each of `ids` that the conversation engine has already stored."""
    if deps.pool is None or not ids:
        return {}
    async with deps.pool.connection() as conn:
        rows = await (await conn.execute(_STORED_TEXTS, (uid, ids))).fetchall()
    return {str(r["message_id"]): str(r["text"]) for r in rows}


def _wire(conds: list[Condition]) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conds]


def own_conditions(
    conversation: Conversation, body: dict[str, Any], conflicts: list[str], generation: int, now: datetime
) -> list[Condition]:
    """Current conditions with the ones this reconcile owns brought up to date."""
    conds = current_conditions(body)
    invalid = conditions.find(conds, INVALID_SPEC)
    if invalid is not None and invalid.status is ConditionStatus.TRUE:
        conds = conditions.set_condition(conds, conditions.make(INVALID_SPEC, False, "SpecValid", "", generation, now))
        conds = conditions.set_condition(
            conds, conditions.make(READY, True, "Accepted", "Conversation accepted", generation, now)
        )
    previous = conditions.find(conds, MESSAGE_CONFLICT)
    if conflicts:
        ids = ", ".join(conflicts)
        message = f"Message id(s) {ids} were reused with different text; the text first stored is kept and answered"
        conds = conditions.set_condition(
            conds, conditions.make(MESSAGE_CONFLICT, True, "MessageIdReused", message, generation, now)
        )
    elif previous is not None and previous.status is ConditionStatus.TRUE:
        conds = conditions.set_condition(
            conds, conditions.make(MESSAGE_CONFLICT, False, "NoConflict", "", generation, now)
        )
    if not conds and not conversation.spec.messages:
        conds = [
            conditions.make(READY, True, "Accepted", "Waiting for the first message", generation, now),
            conditions.make(REPLYING, False, "Idle", "No message to answer", generation, now),
        ]
    return conds


async def reconcile_conversation(info: KindInfo, body: dict[str, Any], deps: Deps, now: datetime) -> Outcome:
    """Level-based reconcile of one Conversation (see the module docstring)."""
    admitted = admit(info, body)
    if not isinstance(admitted, Admitted):
        return rejected(info, body, admitted, now)
    conversation = admitted.resource
    assert isinstance(conversation, Conversation)
    meta = body.get("metadata") or {}
    uid, namespace, name = str(meta.get("uid") or ""), str(meta.get("namespace") or "default"), str(meta.get("name"))
    generation = int(meta.get("generation") or 0)
    answered = conversation.status.answered
    stored = await stored_texts(deps, uid, [m.id for m in conversation.spec.messages])
    conflicts = [m.id for m in conversation.spec.messages if m.id in stored and stored[m.id] != m.text]
    before = current_conditions(body)
    conds = own_conditions(conversation, body, conflicts, generation, now)
    desired: dict[str, Any] = {"observedGeneration": generation, "correlationId": admitted.correlation_id}
    if _wire(conds) != _wire(before):
        desired["conditions"] = _wire(conds)
    status = conditions.delta(body.get("status") or {}, desired)
    events: list[EventNote] = []
    audits: list[AuditNote] = []
    old_conflict = conditions.find(before, MESSAGE_CONFLICT)
    if conflicts and (old_conflict is None or old_conflict.status is not ConditionStatus.TRUE):
        text = f"Message id(s) {', '.join(conflicts)} reused with different text; stored text kept"
        events.append(EventNote("MessageConflict", text, "Warning"))
        audits.append(AuditNote("MessageConflict", SYSTEM_USER, text, {"messages": conflicts}))
    unanswered = conversation.spec.messages[answered:]
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
    return Outcome(status=status, labels=admitted.new_labels, events=tuple(events), audits=tuple(audits))
