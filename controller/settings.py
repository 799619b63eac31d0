"""Process settings: one frozen pydantic-settings object per process, read from `RINGPILOT_*` variables.

`ControllerSettings` configures `ringpilot controller`, `WorkerSettings` configures `ringpilot worker`;
both share `CommonSettings`. Entry points call `load_settings(cls)` once at start, which turns a
validation failure into a `SettingsError` naming each bad variable (the CLI prints it and exits 2).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    Field,
    FilePath,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from controller.storage.cache import validate_redis_url
from controller.storage.db import validate_database_url

ENV_PREFIX = "RINGPILOT_"

DatabaseUrl = Annotated[str, AfterValidator(validate_database_url)]
RedisUrl = Annotated[str, AfterValidator(validate_redis_url)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

#: A namespace name or a Kopf glob of them (`ring-0-*`, `team-?`), optionally negated with a leading `!`.
_NAMESPACE_GLOB = re.compile(r"^!?[a-z0-9*?]([-a-z0-9*?]{0,61}[a-z0-9*?])?$")
#: The dramatiq queues a worker may consume (controller/messaging/broker.py declares them).
WorkerQueue = Literal["steps", "turns"]


class SettingsError(Exception):
    """Settings failed validation; the message has one `VARIABLE: problem` line per error."""


class CommonSettings(BaseSettings):
    """Settings every Ringpilot process reads."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore", env_ignore_empty=True)

    database_url: DatabaseUrl | None = Field(
        None,
        repr=False,  # may hold a password
        description="PostgreSQL DSN (postgresql://user:pass@host:5432/db); unset: an embedded PostgreSQL",
    )
    redis_url: RedisUrl | None = Field(
        None,
        repr=False,  # may hold a password
        description="Redis URL (redis://host:6379/0 or unix:///path?db=0); unset starts an embedded Redis",
    )
    data_dir: Path = Field(
        Path(".ringpilot"),
        description="Directory for embedded PostgreSQL/Redis data and other local state",
    )
    policy_file: FilePath | None = Field(
        None,
        description="Policy YAML (rings, roles, risk, remediation, windows); unset: the shipped dev policy",
    )
    log_level: LogLevel = Field("INFO", description="Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    log_format: Literal["plain", "json"] = Field(
        "plain", description="Log line format: `plain` for terminals, `json` in the cluster"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class ControllerSettings(CommonSettings):
    """Settings of `ringpilot controller` (the Kopf operator)."""

    namespace: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description="Comma-separated namespaces or globs (`ring-0-*`, `!kube-*`) to watch; unset watches all",
    )
    peering: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Name of the ClusterKopfPeering shared with hot standbys; unset runs standalone",
    )
    peering_priority: int | None = Field(
        None,
        ge=1,
        description="This replica's peering priority (the highest runs, the others wait); unset: random",
    )
    resync_interval_seconds: float = Field(
        60.0,
        gt=0,
        description="Timer interval re-running the reconcile of every object in flight, so no missed event stalls "
        "work (a DeploymentTask in flight has its own loop, woken by events, instead)",
    )
    liveness_port: int = Field(
        8081, ge=0, le=65535, description="Port of the /healthz liveness endpoint; 0 turns it off"
    )
    metrics_port: int = Field(9090, ge=0, le=65535, description="Port of the controller's /metrics; 0 turns it off")
    webhook_port: int = Field(
        0, ge=0, le=65535, description="HTTPS port of the admission webhooks (stamping, guards); 0 turns them off"
    )
    webhook_address: str = Field("0.0.0.0", min_length=1, description="Address the webhook server listens on")
    webhook_cert_file: FilePath | None = Field(None, description="PEM certificate the webhook server presents")
    webhook_key_file: FilePath | None = Field(None, description="PEM private key of RINGPILOT_WEBHOOK_CERT_FILE")

    @model_validator(mode="after")
    def _webhook_needs_a_certificate(self) -> ControllerSettings:
        if self.webhook_port and (self.webhook_cert_file is None or self.webhook_key_file is None):
            raise ValueError(
                f"{ENV_PREFIX}WEBHOOK_PORT needs {ENV_PREFIX}WEBHOOK_CERT_FILE and {ENV_PREFIX}WEBHOOK_KEY_FILE"
            )
        return self

    @field_validator("namespace", mode="before")
    @classmethod
    def _split_namespaces(cls, value: Any) -> Any:
        if isinstance(value, str):
            names = [part.strip() for part in value.split(",") if part.strip()]
            return names or None
        return value

    @field_validator("namespace")
    @classmethod
    def _check_namespaces(cls, value: list[str] | None) -> list[str] | None:
        for name in value or ():
            if not _NAMESPACE_GLOB.match(name):
                raise ValueError(f"{name!r} is not a valid namespace name or glob (DNS-1123 label, * or ?)")
        return value


class WorkerSettings(CommonSettings):
    """Settings of `ringpilot worker` (dramatiq). Durations are milliseconds, as dramatiq counts them."""

    processes: int = Field(1, ge=1, description="Worker processes per pod; scale pods for more")
    threads: int = Field(8, ge=1, description="Worker threads per process")
    min_backoff_ms: int = Field(500, gt=0, description="First retry delay of a failed message")
    max_backoff_ms: int = Field(60_000, gt=0, description="Longest retry delay of a failed message")
    max_retries: int = Field(10, ge=0, description="Retries of a failed message before it is dead-lettered")
    time_limit_ms: int = Field(600_000, gt=0, description="Longest a single message may run")
    poll_interval_ms: int = Field(
        100, gt=0, description="How long an idle worker waits on the queue before it polls again (turn latency)"
    )
    metrics_port: int = Field(
        9191, ge=0, le=65535, description="Port of the worker's /metrics (all its processes); 0 turns it off"
    )
    queues: Annotated[list[WorkerQueue] | None, NoDecode] = Field(
        None, description="Comma-separated queues to consume (`steps`, `turns`); unset consumes all"
    )
    queue_prefetch: int = Field(
        0, ge=0, description="Messages a process takes ahead from each queue; 0: dramatiq's default (threads x 2)"
    )

    @field_validator("queues", mode="before")
    @classmethod
    def _split_queues(cls, value: Any) -> Any:
        if isinstance(value, str):
            names = [part.strip() for part in value.split(",") if part.strip()]
            return names or None
        return value

    @field_validator("max_backoff_ms")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        minimum = info.data.get("min_backoff_ms")
        if minimum is not None and value < minimum:
            raise ValueError(f"must not be less than {ENV_PREFIX}MIN_BACKOFF_MS ({minimum})")
        return value


S = TypeVar("S", bound=CommonSettings)


def load_settings(cls: type[S]) -> S:
    """Build `cls` from the environment; raise `SettingsError` naming each bad variable."""
    try:
        return cls()
    except ValidationError as e:
        raise SettingsError(describe_errors(cls, e)) from e


def describe_errors(cls: type[CommonSettings], error: ValidationError) -> str:
    """One `VARIABLE: message` line per error, spelling each variable as it appears in the environment."""
    lines = []
    for item in error.errors(include_url=False):
        loc = item["loc"]
        field = str(loc[0]) if loc else ""
        where = env_name(field) if field in cls.model_fields else (field or "settings")
        rest = "".join(f"[{part}]" for part in loc[1:])
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{where}{rest}: {message}")
    return "\n".join(lines)


def env_name(field: str) -> str:
    """The variable that sets `field`: as spelt in `os.environ` if present (names match case-blind)."""
    expected = f"{ENV_PREFIX}{field}".upper()
    for key in os.environ:
        if key.upper() == expected:
            return key
    return expected
