"""What a tool is: a pydantic input model (its JSON schema is what the model sees), a required permission,
a read-only or mutating flag, and async behaviour; plus the context every call runs in.

Read-only tools implement `run`. Mutating tools implement `plan` (checks and a one-sentence summary,
no effect: the proposal stored in `status.pending`) and `execute` (the effect, run only after the
user said yes, as that user, idempotent under the action id). The registry calls them; tools never
check permissions themselves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from controller.api.conversation import ResourceRef
from controller.api.policy import Permission, Policy, Role
from controller.kube.client import ApiClient, CustomObjects
from controller.kube.coreapps import CoreApps

MAX_RESULT_CHARS = 6000


class ToolInput(BaseModel):
    """Base of every tool's input: unknown arguments are refused, so a model cannot smuggle options in."""

    model_config = ConfigDict(extra="forbid", frozen=True)


InputT = TypeVar("InputT", bound=ToolInput)


@dataclass(frozen=True)
class ToolOutput:
    """A tool's answer: a sentence or two for the user, structured data for the model, resources created."""

    text: str
    data: dict[str, Any] = field(default_factory=dict)
    resources: tuple[ResourceRef, ...] = ()

    def for_model(self) -> str:
        """What a remote model reads as the tool result: the text, then the data as compact JSON."""
        body = self.text
        if self.data:
            body += "\n" + json.dumps(self.data, default=str, separators=(",", ":"))
        return body[:MAX_RESULT_CHARS]


@dataclass(frozen=True)
class Plan:
    """A mutating tool's proposal: what will happen, in one sentence, and the arguments to confirm.

    `arguments` (when set) replaces the model's arguments in the proposal, e.g. with the exact object
    the request resolved to, so "yes" acts on what was shown and not on what matches later.
    """

    summary: str
    arguments: dict[str, Any] | None = None


@dataclass(frozen=True)
class HealthProbe:
    """One component check of `check_health`: returns (ok, detail)."""

    name: str
    check: Callable[[], Awaitable[tuple[bool, str]]]


@dataclass
class ToolServices:
    """Shared dependencies of every tool call in a worker process."""

    policy: Policy
    #: The worker's own API client. It never acts as a user: the objects it creates name the asking user,
    #: and the admission webhook lets it name one only for an action pending in that user's Conversation.
    kube: ApiClient
    pool: Any = None
    redis: Any = None
    breakers: Any = None
    probes: tuple[HealthProbe, ...] = ()
    known_apps: Callable[[], Awaitable[list[str]]] | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def objects(self) -> CustomObjects:
        return CustomObjects(self.kube)


@dataclass(frozen=True)
class ToolContext:
    """Who is asking, in which conversation, and with what: passed to every tool call."""

    user: str
    role: Role
    permissions: frozenset[Permission]
    correlation_id: str
    namespace: str
    conversation: str
    conversation_uid: str
    services: ToolServices

    @property
    def objects(self) -> CustomObjects:
        """The CR client, with the worker's identity: what it creates names `user`, checked at admission."""
        return self.services.objects

    @property
    def kube(self) -> ApiClient:
        return self.services.kube

    @property
    def core(self) -> CoreApps:
        """Namespaces and Deployments, read with the worker's identity."""
        return CoreApps(self.kube)

    def resource_name(self, base: str, action_id: str) -> str:
        """A deterministic, valid object name for what `action_id` creates, so a retry hits 409."""
        digest = hashlib.sha256(f"{self.conversation_uid}/{action_id}".encode()).hexdigest()[:6]
        stem = "".join(ch if ch.isalnum() else "-" for ch in base.lower()).strip("-")[:50].strip("-")
        return f"{stem}-{digest}"


class Tool(Generic[InputT]):
    """A tool: override `run` (read-only) or `plan` and `execute` (mutating)."""

    name: ClassVar[str]
    description: ClassVar[str]
    input_model: ClassVar[type[ToolInput]]
    permission: ClassVar[Permission]
    mutating: ClassVar[bool] = False

    def schema(self) -> dict[str, Any]:
        schema = self.input_model.model_json_schema()
        schema.pop("title", None)
        return schema

    def parse(self, arguments: dict[str, Any]) -> InputT:
        return self.input_model.model_validate(arguments)  # type: ignore[return-value]

    async def run(self, args: InputT, ctx: ToolContext) -> ToolOutput:
        """A read-only tool answers here; a mutating one never does (the registry calls `plan`)."""
        raise TypeError(f"{self.name} is mutating: it plans and executes, it does not run")

    async def plan(self, args: InputT, ctx: ToolContext) -> Plan:
        """A mutating tool describes what it will do; the user confirms before `execute`."""
        raise TypeError(f"{self.name} is read-only: it runs, it has nothing to plan")

    async def execute(self, args: InputT, ctx: ToolContext, action_id: str) -> ToolOutput:
        """A mutating tool acts here, after the user confirmed its plan."""
        raise TypeError(f"{self.name} is read-only: it runs, it has nothing to execute")
