"""The gateway's request and response bodies (gateway-chart.md §1.3), camelCase on the wire.

Requests refuse unknown fields and are bounded like the Conversation CRD (a message's text at most
`MAX_MESSAGE_CHARS`, ids like `spec.messages[].id`), so what the gateway accepts the API server
accepts too. These models are also what the served OpenAPI document describes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from controller.api.changerequest import ApprovalConditions, Decision
from controller.api.conversation import MAX_MESSAGE_CHARS, LLMRef, MessageId


class Body(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown request fields are refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ErrorDetail(Body):
    code: str = Field(description="CamelCase reason, e.g. Conflict, NotFound, Invalid")
    message: str
    field: str | None = Field(None, description="The request field to blame, when there is one")


class ErrorEnvelope(Body):
    error: ErrorDetail


class Health(Body):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(description="database, redis, kubernetes: ok, or why not")


class WhoAmI(Body):
    user: str
    groups: list[str]
    roles: list[str]
    authenticated_by: Literal["token", "kubernetes", "oidc"]


class NewConversation(Body):
    text: str | None = Field(None, min_length=1, max_length=MAX_MESSAGE_CHARS, description="The first message")
    id: MessageId | None = Field(None, description="Client id of the first message (default m1)")
    llm: LLMRef | None = None


class ConversationCreated(Body):
    name: str
    namespace: str
    user: str
    correlation_id: str
    message_id: str | None = None


class ConversationSummary(Body):
    name: str
    namespace: str
    user: str
    title: str
    state: str
    updated_at: datetime | None = None


class ConversationPage(Body):
    items: list[ConversationSummary]
    next: str | None = Field(None, description="Cursor of the next page; absent on the last")


class Pending(Body):
    pending_id: str
    tool: str
    summary: str
    message_id: str | None = None


class ResourceLink(Body):
    kind: str
    namespace: str
    name: str


class Usage(Body):
    input_tokens: int = 0
    output_tokens: int = 0


class TranscriptMessage(Body):
    seq: int
    role: Literal["user", "assistant", "tool"]
    text: str
    message_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    created_at: datetime | None = None


class ConversationView(Body):
    name: str
    namespace: str
    user: str
    state: Literal["Ready", "Replying", "Failed"]
    correlation_id: str | None = None
    pending: Pending | None = None
    resources: list[ResourceLink] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    messages: list[TranscriptMessage] = Field(default_factory=list)
    last_event_id: int = Field(0, description="The seq of the newest event; stream with ?after= this")


class NewMessage(Body):
    id: MessageId | None = Field(None, description="Client idempotency key: the same id twice is one turn")
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


class MessageAccepted(Body):
    message_id: str
    events_url: str


class Confirmation(Body):
    pending_id: str = Field(min_length=1, max_length=64)
    decision: Literal["confirm", "decline"]
    reason: str | None = Field(None, max_length=1024)


class Cancelled(Body):
    cancelled: Literal["pending", "nothing"] = Field(
        description="pending: the waiting proposal was declined; nothing: there was nothing to stop"
    )
    message_id: str | None = None


class ChangeSummary(Body):
    name: str
    namespace: str
    task: str
    app: str
    version: str
    max_ring: int
    risk_score: int
    plan_digest: str
    submitted_by: str
    required_approvals: int
    approvals: int
    phase: str


class ChangeList(Body):
    items: list[ChangeSummary]


class NewDecision(Body):
    decision: Decision
    plan_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    conditions: ApprovalConditions | None = None
    comment: str | None = Field(None, max_length=2048)


class DecisionRecorded(Body):
    phase: str
    approver: str
