"""Shared building blocks of every Ringpilot custom resource.

Holds the API group constants, the camelCase base models, the Kubernetes `metav1.Condition`
shape and the generic `CustomResource` envelope that parses a raw body into typed spec/status.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from controller.api.group import API_VERSION
from controller.api.labels import CORRELATION_LABEL

#: A DNS-1123 label: names of apps, namespaces and most references.
DnsLabel = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
#: A DNS-1123 subdomain: names of Kubernetes objects.
ObjectName = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    ),
]
#: A correlation ID: also a valid label value, so it can be the correlation label.
CorrelationId = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
]
#: A user or group name as Kubernetes or the gateway reports it.
UserName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=r"^[^\s]+$")]
#: A CamelCase condition reason, as the API conventions ask.
Reason = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Z][A-Za-z0-9]*$")]
#: A human sentence, bounded.
Message = Annotated[str, StringConstraints(max_length=2048)]
#: A ring number.
Ring = Annotated[int, Field(ge=0, le=4)]


def new_correlation_id() -> str:
    """A fresh correlation ID (UUIDv4, valid as a label value)."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class CamelModel(BaseModel):
    """Base for spec models: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", use_enum_values=False)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready camelCase dict, without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(CamelModel):
    """Base for status models: tolerant of fields written by older or newer controllers."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """One observation of an aspect of the object (Kubernetes `metav1.Condition`)."""

    type: Reason = Field(description="Type of condition in CamelCase, e.g. Ready.")
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    reason: Reason = Field(description="One CamelCase word giving the reason for the last transition.")
    message: Message = Field("", description="A human-readable sentence with details about the transition.")
    observed_generation: int | None = Field(
        None, ge=0, description="The .metadata.generation the condition was set for."
    )
    last_transition_time: datetime | None = Field(
        None, description="When the condition last changed from one status to another."
    )


class ObjectMeta(StatusModel):
    """The part of `metadata` the controller reads."""

    name: str = ""
    namespace: str | None = None
    uid: str | None = None
    generation: int = 0
    resource_version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    deletion_timestamp: str | None = None
    finalizers: list[str] = Field(default_factory=list)


SpecT = TypeVar("SpecT", bound=CamelModel)
StatusT = TypeVar("StatusT", bound=StatusModel)


class CustomResource(BaseModel, Generic[SpecT, StatusT]):
    """A typed envelope around a raw custom-resource body."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    kind: ClassVar[str] = ""
    api_version: str = Field(API_VERSION, alias="apiVersion")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: SpecT
    status: StatusT

    @classmethod
    def from_body(cls, body: Any) -> Self:
        """Parse a raw body (a dict or Kopf's Body); a missing status is an empty one."""
        raw = dict(body)
        raw.setdefault("status", {})
        if raw["status"] is None:
            raw["status"] = {}
        return cls.model_validate(raw)

    @property
    def correlation_id(self) -> str | None:
        return self.metadata.labels.get(CORRELATION_LABEL)

    def to_wire(self) -> dict[str, Any]:
        """The object as `kubectl apply` would send it (no status)."""
        meta: dict[str, Any] = {"name": self.metadata.name}
        if self.metadata.namespace:
            meta["namespace"] = self.metadata.namespace
        if self.metadata.labels:
            meta["labels"] = dict(self.metadata.labels)
        if self.metadata.annotations:
            meta["annotations"] = dict(self.metadata.annotations)
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "metadata": meta,
            "spec": self.spec.to_wire(),
        }
