"""The wire models of `GET /api/v1/tasks` and `GET /api/v1/traces/{correlationId}`.

The gateway's routes (`tasksroutes`, `traceroutes`) answer with these, and the CLI (`ringpilot tasks`,
`ringpilot trace`) validates the answers into them, so both sides share one definition. camelCase on
the wire, unknown fields ignored so an older CLI still reads a newer gateway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """camelCase JSON, tolerant of fields it does not know."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class RingSummary(WireModel):
    """One ring of a task: how many targets run the new version and are healthy, and its gate."""

    ring: int = Field(ge=0, le=4)
    targets: int = Field(0, ge=0, description="Targets in the ring (from the plan before the ring starts)")
    updated: int = Field(0, ge=0)
    healthy: int = Field(0, ge=0)
    failed: int = Field(0, ge=0)
    success_rate: float | None = None
    gate: str = Field("Pending", description="Pending, Soaking, Passed or Failed")
    threshold: float | None = None
    rolled_back: bool = False


class TaskSummary(WireModel):
    """One DeploymentTask as `ringpilot tasks` shows it."""

    name: str
    namespace: str
    app: str
    version: str
    action: str = "Deploy"
    max_ring: int = Field(ge=0, le=4)
    phase: str | None = None
    current_step: str | None = None
    current_ring: int | None = None
    progress: str | None = None
    requested_by: str | None = None
    correlation_id: str | None = None
    change_request: str | None = None
    created_at: datetime | None = None
    rings: list[RingSummary] = Field(default_factory=list)


class TaskList(WireModel):
    """The answer of `GET /api/v1/tasks`, newest first."""

    items: list[TaskSummary] = Field(default_factory=list)


#: Where a trace entry comes from.
TraceSource = Literal["audit", "turn", "message", "tool", "resource", "object", "step", "claim", "rollout", "event"]


class TraceEntry(WireModel):
    """One thing a correlation ID touched, at one moment."""

    at: datetime
    source: TraceSource
    kind: str | None = Field(None, description="Kind of the object concerned, e.g. DeploymentTask")
    namespace: str | None = None
    name: str | None = None
    what: str = Field(description="The action, state or reason, e.g. StepStarted")
    actor: str | None = None
    detail: str = Field("", description="One line a person reads")
    trace_id: str | None = Field(None, description="The OpenTelemetry trace id recorded with an audit row")


class ObjectRef(WireModel):
    """A custom resource that carries the correlation-ID label."""

    kind: str
    namespace: str
    name: str


class Trace(WireModel):
    """The answer of `GET /api/v1/traces/{correlationId}`: entries in time order."""

    correlation_id: str
    trace_ids: list[str] = Field(default_factory=list, description="Distinct trace ids of the audit rows, in order")
    objects: list[ObjectRef] = Field(default_factory=list)
    entries: list[TraceEntry] = Field(default_factory=list)
