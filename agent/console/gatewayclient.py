"""The CLI's HTTP client of the gateway API (gateway-chart.md §1.3), over httpx.

`GatewayClient` sends the bearer token on every call and turns every failure into `GatewayError`:
the gateway's error envelope (`{"error": {"code", "message", "field"}}`) with its HTTP status, or
status 0 when the gateway could not be reached. Answers are validated into pydantic models.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from agent.console.connection import GatewayTarget
from agent.gateway.consoleviews import TaskList, Trace

API = "/api/v1"
#: A read of a stream may wait this long for a byte; the gateway pings an idle stream every 15 s.
STREAM_READ_TIMEOUT_SECONDS = 60.0


class GatewayError(Exception):
    """A call the gateway refused or could not answer."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        where = f" ({self.field})" if self.field else ""
        head = f"{self.status} {self.code}" if self.status else self.code
        return f"{head}: {self.message}{where}"


class Answer(BaseModel):
    """An answer of the gateway: camelCase, fields we do not use ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class ConversationCreated(Answer):
    name: str
    namespace: str | None = None
    user: str | None = None
    correlation_id: str | None = None
    message_id: str | None = None


class PendingView(Answer):
    pending_id: str
    tool: str = ""
    summary: str = ""


class ConversationState(Answer):
    """What resuming a conversation needs: its owner, state, proposal and newest event id."""

    name: str
    user: str | None = None
    state: str | None = None
    correlation_id: str | None = None
    pending: PendingView | None = None
    last_event_id: int = 0


class MessageAccepted(Answer):
    message_id: str


class ConfirmationAccepted(Answer):
    message_id: str | None = None


class ChangeRequestView(Answer):
    """What `approve` needs of a ChangeRequest: its name and the plan digest a decision binds to."""

    name: str
    namespace: str | None = None
    plan_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    submitted_by: str | None = None
    phase: str | None = None


class ChangeRequestList(Answer):
    items: list[ChangeRequestView]


class DecisionRecorded(Answer):
    phase: str | None = None


def error_from(response: httpx.Response) -> GatewayError:
    """The `GatewayError` of a 4xx/5xx answer, from the envelope when there is one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict) and envelope.get("message"):
        return GatewayError(
            response.status_code,
            str(envelope.get("code") or response.reason_phrase),
            str(envelope["message"]),
            envelope.get("field"),
        )
    detail = body.get("detail") if isinstance(body, dict) else None
    return GatewayError(response.status_code, response.reason_phrase, str(detail or response.text or "no reason given"))


def _path(*parts: str) -> str:
    return API + "".join("/" + quote(part, safe="") for part in parts)


class GatewayClient:
    """One gateway, one token; use it as a context manager."""

    def __init__(self, target: GatewayTarget, *, transport: httpx.BaseTransport | None = None) -> None:
        self.target = target
        self.http = httpx.Client(
            base_url=target.url,
            headers={"Authorization": f"Bearer {target.token}", "Accept": "application/json"},
            timeout=httpx.Timeout(30.0, read=STREAM_READ_TIMEOUT_SECONDS),
            transport=transport,
        )

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def unreachable(self, error: httpx.TransportError) -> GatewayError:
        return GatewayError(0, "Unavailable", f"cannot reach the gateway at {self.target.url}: {error}")

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; its decoded JSON (None for an empty body), or `GatewayError`."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise self.unreachable(error) from error
        if response.is_error:
            raise error_from(response)
        return response.json() if response.content else None

    def _model(self, model: type[Any], value: Any) -> Any:
        try:
            return model.model_validate(value)
        except ValidationError as error:
            raise GatewayError(0, "BadAnswer", f"the gateway's answer is not a {model.__name__}: {error}") from error

    def whoami(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.call("GET", _path("whoami"))
        return answer

    def create_conversation(self, namespace: str | None = None) -> ConversationCreated:
        params = {"namespace": namespace} if namespace else None
        created: ConversationCreated = self._model(
            ConversationCreated, self.call("POST", _path("conversations"), json={}, params=params)
        )
        return created

    def conversation(self, name: str, namespace: str | None = None) -> ConversationState:
        params = {"namespace": namespace} if namespace else None
        state: ConversationState = self._model(
            ConversationState, self.call("GET", _path("conversations", name), params=params)
        )
        return state

    def post_message(self, conversation: str, text: str, message_id: str, namespace: str | None = None) -> str:
        """Post one user turn under a client idempotency key; the gateway's message id."""
        params = {"namespace": namespace} if namespace else None
        answer = self.call(
            "POST",
            _path("conversations", conversation, "messages"),
            json={"id": message_id, "text": text},
            params=params,
        )
        accepted: MessageAccepted = self._model(MessageAccepted, answer)
        return accepted.message_id

    def confirm(self, conversation: str, pending_id: str, confirm: bool, namespace: str | None = None) -> str | None:
        """Confirm or decline a proposed action; the message id of the turn that carries it out, if told."""
        params = {"namespace": namespace} if namespace else None
        body = {"pendingId": pending_id, "decision": "confirm" if confirm else "decline"}
        answer = self.call("POST", _path("conversations", conversation, "confirmations"), json=body, params=params)
        accepted: ConfirmationAccepted = self._model(ConfirmationAccepted, answer or {})
        return accepted.message_id

    def cancel(self, conversation: str, namespace: str | None = None) -> None:
        params = {"namespace": namespace} if namespace else None
        self.call("POST", _path("conversations", conversation, "cancel"), params=params)

    def change_requests(self, namespace: str | None = None) -> list[ChangeRequestView]:
        """The ChangeRequests the caller may read (every namespace unless `namespace`)."""
        params = {"namespace": namespace} if namespace else None
        listing: ChangeRequestList = self._model(
            ChangeRequestList, self.call("GET", _path("changerequests"), params=params)
        )
        return listing.items

    def decide(
        self,
        name: str,
        *,
        approve: bool,
        plan_digest: str,
        conditions: dict[str, Any] | None = None,
        comment: str | None = None,
        namespace: str | None = None,
    ) -> DecisionRecorded:
        body: dict[str, Any] = {"decision": "Approve" if approve else "Reject", "planDigest": plan_digest}
        if conditions:
            body["conditions"] = conditions
        if comment:
            body["comment"] = comment
        params = {"namespace": namespace} if namespace else None
        answer = self.call("POST", _path("changerequests", name, "decisions"), json=body, params=params)
        recorded: DecisionRecorded = self._model(DecisionRecorded, answer or {})
        return recorded

    def tasks(self, *, namespace: str | None = None, app: str | None = None, phase: str | None = None) -> TaskList:
        params = {key: value for key, value in (("namespace", namespace), ("app", app), ("phase", phase)) if value}
        listing: TaskList = self._model(TaskList, self.call("GET", _path("tasks"), params=params))
        return listing

    def trace(self, correlation_id: str) -> Trace:
        found: Trace = self._model(Trace, self.call("GET", _path("traces", correlation_id)))
        return found
