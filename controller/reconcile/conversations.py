"""The Conversation reconcile: admit the spec and enqueue a turn per unanswered message.

Turns are enqueued by actor name (`answer_turn` on the `turns` queue) with an idempotency key of
conversation uid and message id, so Kopf running twice or the resync timer re-enqueuing is harmless:
the worker answers in order and exactly once. `status.conditions` has two writers. The worker owns
the turn conditions (`Ready`, `Replying`, `Failed`, and `MessageConflict`: only the agent, which owns
the stored messages, can tell that an id was reused). This reconcile writes `observedGeneration`, the
correlation ID and `InvalidSpec` (with `Ready` when the spec is rejected or accepted again). It sets
its conditions by type on the fresh object (`Outcome.conditions`), never the whole list.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from controller.api.conversation import READY, REPLYING, TURN_ACTOR, TURN_QUEUE, Conversation
from controller.api.kinds import KindInfo
from controller.api.meta import Condition
from controller.core import conditions
from controller.core.conditions import INVALID_SPEC, current_conditions
from controller.core.outcome import Admitted, Outcome
from controller.reconcile.admission import admit, rejected
from controller.reconcile.deps import Deps

logger = logging.getLogger(__name__)

#: The condition types this reconcile writes (the rest of the list is the worker's).
OWNED = (INVALID_SPEC, READY)


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
    answered = conversation.status.answered
    desired: dict[str, Any] = {"observedGeneration": generation, "correlationId": admitted.correlation_id}
    status = conditions.delta(body.get("status") or {}, desired)
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
    own = tuple(own_conditions(conversation, body, generation, now))
    return Outcome(status=status, labels=admitted.new_labels, conditions=own)
