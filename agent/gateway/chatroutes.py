"""The conversation routes of gateway-chart.md §1.3 (the event stream is in `streaming.py`).

Conversations stay custom resources: create and post append to the Conversation CR (the controller
and a worker answer it, as for `kubectl apply`), reads come from the CR (state, pending, links) and
from PostgreSQL (the transcript). Each user sees their own conversations only (admins all); a turn
counts against the caller's per-minute limit unless it repeats a message id already posted.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from agent.chat.state import ChatStateManager
from agent.gateway.authenticating import Principal
from agent.gateway.bodies import (
    Cancelled,
    Confirmation,
    ConversationCreated,
    ConversationPage,
    ConversationView,
    MessageAccepted,
    NewConversation,
    NewMessage,
)
from agent.gateway.chatwrites import append_turn, create_conversation, new_message_id
from agent.gateway.dependencies import (
    CallerDep,
    ConversationDep,
    GatewayDep,
    NamespaceDep,
    kube_refusal,
    owns,
)
from agent.gateway.errors import GatewayError
from agent.gateway.presenting import read_transcript, summary_of, view_of
from agent.gateway.wiring import Gateway
from controller.api.conversation import ChatMessage, Conversation
from controller.api.kinds import CONVERSATION
from controller.kube.client import KubeError

PREFIX = "/api/v1/conversations"
router = APIRouter(prefix=PREFIX, tags=["conversations"])
_DELETE = "DELETE FROM conversations WHERE id = %s"


def events_url(conversation: Conversation) -> str:
    return f"{PREFIX}/{conversation.metadata.name}/events?namespace={conversation.metadata.namespace or 'default'}"


async def _admit_turn(gateway: Gateway, principal: Principal) -> None:
    wait = await gateway.limiter.admit(principal.user)
    if wait:
        raise GatewayError(
            429,
            f"At most {gateway.settings.gateway_turns_per_minute} chat turns a minute; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )


async def _post(gateway: Gateway, principal: Principal, conversation: Conversation, message: ChatMessage) -> str:
    """Append a turn once; the message id (an id already posted returns at once, uncounted)."""
    if not any(m.id == message.id and m.text == message.text for m in conversation.spec.messages):
        await _admit_turn(gateway, principal)
    try:
        appended = await append_turn(gateway.objects_for(principal), conversation, message)
    except KubeError as error:
        raise kube_refusal(error, f"append to Conversation {conversation.metadata.name}") from error
    return appended.message.id


@router.post("", status_code=status.HTTP_201_CREATED)
async def create(
    body: NewConversation, gateway: GatewayDep, principal: CallerDep, namespace: NamespaceDep, response: Response
) -> ConversationCreated:
    """Start a conversation, optionally with its first message."""
    first = ChatMessage(id=body.id or "m1", text=body.text) if body.text else None
    if first is not None:
        await _admit_turn(gateway, principal)
    async with gateway.pool.connection() as conn:  # no Conversation whose transcript could not be kept
        await conn.execute("SELECT 1")
    try:
        made = await create_conversation(gateway.objects_for(principal), namespace, principal.user, first, body.llm)
    except KubeError as error:
        raise kube_refusal(error, "create a Conversation") from error
    correlation = made.correlation_id or made.spec.correlation_id or ""
    if made.metadata.uid:  # so its stream has a home before the first turn is answered
        chat = ChatStateManager(gateway.pool)
        await chat.create_conversation(
            made.spec.user, correlation, conversation_id=made.metadata.uid, namespace=namespace, name=made.metadata.name
        )
    response.headers["Location"] = f"{PREFIX}/{made.metadata.name}?namespace={namespace}"
    return ConversationCreated(
        name=made.metadata.name,
        namespace=namespace,
        user=made.spec.user,
        correlation_id=correlation,
        message_id=first.id if first else None,
    )


@router.get("")
async def list_conversations(
    gateway: GatewayDep,
    principal: CallerDep,
    namespace: NamespaceDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,6}$")] = None,
) -> ConversationPage:
    """The caller's conversations, newest first (an admin's list has everyone's)."""
    try:
        found = await gateway.objects_for(principal).list(Conversation, namespace)
    except KubeError as error:
        raise kube_refusal(error, f"list Conversations in {namespace}") from error
    mine = [summary_of(c) for c in found if owns(gateway, principal, c)]
    mine.sort(key=lambda s: (s.updated_at.timestamp() if s.updated_at else 0.0, s.name), reverse=True)
    start = int(cursor or 0)
    page = mine[start : start + limit]
    more = start + limit < len(mine)
    return ConversationPage(items=page, next=str(start + limit) if more else None)


@router.get("/{name}")
async def read(
    conversation: ConversationDep, gateway: GatewayDep, after: Annotated[int, Query(ge=0)] = 0
) -> ConversationView:
    """State, pending proposal, created resources and the transcript (messages after `after`)."""
    uid = conversation.metadata.uid or ""
    head = await gateway.events.head(uid)
    return view_of(conversation, await read_transcript(gateway.pool, uid, after), head)


@router.post("/{name}/messages", status_code=status.HTTP_202_ACCEPTED)
async def post_message(
    body: NewMessage, conversation: ConversationDep, gateway: GatewayDep, principal: CallerDep
) -> MessageAccepted:
    """Append a user turn; the same `id` twice is one turn and the same answer."""
    message = ChatMessage(id=body.id or new_message_id(), text=body.text)
    message_id = await _post(gateway, principal, conversation, message)
    return MessageAccepted(message_id=message_id, events_url=events_url(conversation))


def confirmation_id(pending_id: str) -> str:
    """The message id of the answer to a proposal: one answer per proposal, however often it is posted."""
    return f"confirm-{hashlib.sha256(pending_id.encode()).hexdigest()[:20]}"


@router.post("/{name}/confirmations", status_code=status.HTTP_202_ACCEPTED)
async def confirm(
    body: Confirmation, conversation: ConversationDep, gateway: GatewayDep, principal: CallerDep
) -> MessageAccepted:
    """Confirm or decline the pending proposal; 409 when `pendingId` is not the one pending."""
    message = ChatMessage(id=confirmation_id(body.pending_id), text="yes" if body.decision == "confirm" else "no")
    answered = next((m for m in conversation.spec.messages if m.id == message.id), None)
    if answered is None:
        pending = conversation.status.pending
        if pending is None or pending.id != body.pending_id:
            current = f"the pending one is {pending.id}" if pending else "nothing is pending"
            raise GatewayError(409, f"Proposal {body.pending_id} is not pending ({current})", field="pendingId")
    elif answered.text != message.text:
        raise GatewayError(409, f"Proposal {body.pending_id} was already answered {answered.text!r}", field="decision")
    message_id = await _post(gateway, principal, conversation, message)
    return MessageAccepted(message_id=message_id, events_url=events_url(conversation))


@router.post("/{name}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel(conversation: ConversationDep, gateway: GatewayDep, principal: CallerDep) -> Cancelled:
    """Best effort: decline the proposal waiting for confirmation; a model call already running finishes."""
    pending = conversation.status.pending
    if pending is None:
        return Cancelled(cancelled="nothing")
    message = ChatMessage(id=confirmation_id(pending.id), text="no")
    return Cancelled(cancelled="pending", message_id=await _post(gateway, principal, conversation, message))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(conversation: ConversationDep, gateway: GatewayDep, principal: CallerDep) -> Response:
    """Delete the Conversation and its transcript."""
    namespace, name = conversation.metadata.namespace or "default", conversation.metadata.name
    try:
        await gateway.objects_for(principal).delete(CONVERSATION, namespace, name)
    except KubeError as error:
        if not error.not_found:
            raise kube_refusal(error, f"delete Conversation {namespace}/{name}") from error
    async with gateway.pool.connection() as conn:
        await conn.execute(_DELETE, (conversation.metadata.uid,))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
