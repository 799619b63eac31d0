"""The policy file: rings, role mapping, risk thresholds and trusted sources, remediation limits, windows.

Loaded once per process by `load_policy` (a ConfigMap in the chart; the shipped `dev.yaml` otherwise)
and consulted by gates, approvals, remediation and the chat tools. Roles map to permissions by the
fixed table `ROLE_PERMISSIONS` (ARCHITECTURE.md §6, docs/domain.md §7):

- `cab-approver` may read and approve, nothing else: who approves a change never ships it.
- `admin` configures the platform and may stop or undo (cancel, rollback, remediate, restart) but may
  not deploy, submit to CAB or approve ("Platform Admin may not publish to production"), so no
  single role both ships and approves.
- `Policy.role_for` picks one role per user: an explicit `roles.users` entry wins; otherwise the
  user's groups, taking the first of `ROLE_PRECEDENCE` (admin, cab-approver, publisher, operator,
  viewer) — a member of both a publisher and an approver group is an approver, the role that cannot
  ship; anyone unmapped is a `viewer`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import time
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from controller.api.registries import MUTABLE_TAGS as MUTABLE_TAGS  # re-exported: the policy's vocabulary
from controller.api.registries import RegistryTrust

DnsLabel = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]


class Role(StrEnum):
    """A Ringpilot role, mapped from users and groups by the policy."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    PUBLISHER = "publisher"
    CAB_APPROVER = "cab-approver"
    ADMIN = "admin"


class Permission(StrEnum):
    """Something a role may do; chat tools and the gateway check these, never role names."""

    READ = "read"
    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    REMEDIATE = "remediate"
    RESTART = "restart"
    CANCEL = "cancel"
    SUBMIT_CAB = "submit_cab"
    APPROVE = "approve"
    ADMIN = "admin"


_P = Permission
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = MappingProxyType(
    {
        Role.VIEWER: frozenset({_P.READ}),
        Role.OPERATOR: frozenset({_P.READ, _P.REMEDIATE, _P.RESTART, _P.ROLLBACK}),
        Role.PUBLISHER: frozenset({_P.READ, _P.DEPLOY, _P.SUBMIT_CAB, _P.ROLLBACK, _P.CANCEL}),
        Role.CAB_APPROVER: frozenset({_P.READ, _P.APPROVE}),
        Role.ADMIN: frozenset({_P.READ, _P.ROLLBACK, _P.REMEDIATE, _P.RESTART, _P.CANCEL, _P.ADMIN}),
    }
)
#: When a user's groups map to several roles, the first of these that applies is theirs.
ROLE_PRECEDENCE: tuple[Role, ...] = (Role.ADMIN, Role.CAB_APPROVER, Role.PUBLISHER, Role.OPERATOR, Role.VIEWER)


def may(role: Role, permission: Permission) -> bool:
    """True if `role` holds `permission`."""
    return permission in ROLE_PERMISSIONS[role]


class RingName(StrEnum):
    """The fixed names of rings 0-4 (docs/domain.md §1)."""

    LAB = "Lab"
    CANARY = "Canary"
    PILOT = "Pilot"
    DEPARTMENT = "Department"
    GLOBAL = "Global"


RING_NAMES: tuple[RingName, ...] = tuple(RingName)


class Weekday(StrEnum):
    """Days a change window applies on."""

    MON = "Mon"
    TUE = "Tue"
    WED = "Wed"
    THU = "Thu"
    FRI = "Fri"
    SAT = "Sat"
    SUN = "Sun"


class PolicyModel(BaseModel):
    """Base of every policy section: camelCase in YAML, unknown keys rejected, immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class RingPolicy(PolicyModel):
    """One ring: its gate threshold, minimum soak and when CAB approval is required to enter it."""

    ring: int = Field(ge=0, le=4, description="Ring number, 0 (Lab) to 4 (Global)")
    name: RingName = Field(description="Ring name; must match the number (0 Lab … 4 Global)")
    success_threshold: float = Field(ge=0, le=1, description="Minimum success rate in this ring (0-1)")
    min_soak_seconds: int = Field(ge=0, description="Minimum observation time in this ring before its gate")
    cab_required_above_risk: int | None = Field(
        None, ge=0, le=100, description="CAB approval needed to enter when risk exceeds this; null never"
    )

    @field_validator("name")
    @classmethod
    def _name_matches_number(cls, value: RingName, info: ValidationInfo) -> RingName:
        number = info.data.get("ring")
        if isinstance(number, int) and RING_NAMES[number] != value:
            raise ValueError(f"ring {number} is named {RING_NAMES[number].value!r}, not {value.value!r}")
        return value


class RoleMapping(PolicyModel):
    """Who holds which role: by user name, and by group (Kubernetes groups or gateway token groups)."""

    users: dict[Annotated[str, StringConstraints(min_length=1)], Role] = Field(
        default_factory=dict, description="User name → role; wins over group mappings"
    )
    groups: dict[Annotated[str, StringConstraints(min_length=1)], Role] = Field(
        default_factory=dict, description="Group name → role"
    )


PrincipalName = Annotated[str, StringConstraints(min_length=1, max_length=253)]


class IdentityPolicy(PolicyModel):
    """Which authenticated principals the admission webhooks let name a user other than themselves.

    Everyone else has `spec.user`, `spec.requestedBy` and a decision's `approver` replaced by their own
    name. The worker may name only a user whose Conversation has an action pending for that object.
    """

    controller: PrincipalName | None = Field(
        None, description="The controller's own identity; the only one that may name system:ringpilot"
    )
    worker: PrincipalName | None = Field(
        None, description="The worker's identity: names the asking user of a confirmed chat action"
    )
    trusted_principals: list[PrincipalName] = Field(
        default_factory=list, description="Identities that authenticate users themselves (the gateway)"
    )

    def vouches(self, principal: str) -> bool:
        """True if `principal` may name another user (the worker only with a pending action behind it)."""
        return principal in self.trusted_principals or principal in (self.controller, self.worker)


class RiskPolicy(PolicyModel):
    """Risk thresholds (docs/domain.md §3)."""

    auto_approve_max_score: int = Field(50, ge=0, le=100, description="Highest risk score that skips CAB")
    privileged_apps: list[DnsLabel] = Field(
        default_factory=list, description="Apps always treated as privileged (CAB, manual remediation)"
    )
    registries: list[RegistryTrust] | None = Field(
        None,
        description="Allowed image repositories with their trust; any other spec.artifact is refused "
        "(None: no allow-list)",
    )
    trusted_declarers: list[PrincipalName] = Field(
        default_factory=list,
        description="Principals (e.g. the CI's identity) whose risk annotation on a task is taken over spec.risk",
    )

    def registry_for(self, artifact: str) -> RegistryTrust | None:
        """The longest allowed repository prefix of `artifact`, or None."""
        found = [r for r in self.registries or [] if r.matches(artifact)]
        return max(found, key=lambda r: len(r.repository), default=None)


class CheckIntervals(PolicyModel):
    """Seconds between drift checks of an Assignment, by its criticality (docs/domain.md §6)."""

    critical: int = Field(900, ge=1, description="Critical apps: 15 min")
    high: int = Field(1800, ge=1, description="High: 30 min")
    standard: int = Field(3600, ge=1, description="Standard (default): 1 h")
    low: int = Field(14400, ge=1, description="Low: 4 h")


class RemediationLimits(PolicyModel):
    """Limits on autonomous remediation (docs/domain.md §6)."""

    max_attempts: int = Field(3, ge=1, description="Attempts per drift before escalating")
    initial_backoff_seconds: int = Field(3600, ge=0, description="Delay before the second attempt; doubles")
    max_backoff_seconds: int = Field(14400, ge=0, description="Longest delay between attempts")
    autonomous_max_ring: int = Field(1, ge=-1, le=4, description="Highest ring fixed without approval; -1 none")
    max_targets_per_action: int = Field(50, ge=1, description="Blast-radius cap of one remediation")
    timeout_seconds: int = Field(600, gt=0, description="Longest one remediation action may run")
    max_concurrent_per_ring: int = Field(5, ge=1, description="Remediations acting at once in one ring")
    max_concurrent_per_app: int = Field(3, ge=1, description="Remediations acting at once on one app")
    max_per_hour: int = Field(20, ge=1, description="Remediation attempts started in any hour, all rings")
    settle_seconds: int = Field(
        300, ge=0, description="How long a fixed target must stay in sync and healthy to count as verified"
    )
    verify_timeout_seconds: int = Field(
        900, gt=0, description="How long after a fix the drift may take to clear before the attempt failed"
    )
    flap_window_intervals: int = Field(
        3, ge=1, description="A drift back within this many check intervals of a verified fix is a recurrence"
    )
    flap_recurrences: int = Field(
        2, ge=1, description="Recurrences of the same drift after verified fixes that count as flapping"
    )
    service_down_grace_seconds: int = Field(
        120, ge=0, description="How long a workload may be unavailable before it is ServiceDown drift"
    )
    check_interval_seconds: CheckIntervals = Field(
        default_factory=CheckIntervals, description="Seconds between drift checks, by criticality"
    )

    def check_interval_for(self, criticality: str) -> int:
        """Seconds between checks of an Assignment of `criticality` (critical, high, standard, low)."""
        value: int = getattr(self.check_interval_seconds, criticality)
        return value


class WindowKind(StrEnum):
    """An allow window lets changes run inside it; a deny window (a freeze) stops them inside it."""

    ALLOW = "allow"
    DENY = "deny"


class WindowPurpose(StrEnum):
    """What a window governs: rollouts (deploy) or drift fixes (remediate)."""

    DEPLOY = "deploy"
    REMEDIATE = "remediate"


class ChangeWindow(PolicyModel):
    """A recurring window in which changes may run (allow) or must not run (deny).

    With allow windows for a ring and purpose, changes run only inside one of them; a deny window
    covering now stops changes whatever the allow windows say. `start == end` means the whole day.
    """

    name: str = Field(min_length=1, description="Window name, shown in gate messages")
    kind: WindowKind = Field(WindowKind.ALLOW, description="allow (changes run inside) or deny (a freeze)")
    applies_to: list[WindowPurpose] = Field(
        default_factory=lambda: list(WindowPurpose), description="What it governs: deploy, remediate or both"
    )
    rings: list[Annotated[int, Field(ge=0, le=4)]] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4], description="Rings the window governs"
    )
    days: list[Weekday] = Field(default_factory=lambda: list(Weekday), description="Days it opens on")
    start: time = Field(description="Opening time, HH:MM")
    end: time = Field(description="Closing time, HH:MM; before `start` means it closes the next day")
    timezone: str = Field("UTC", description="IANA time zone of start and end")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted_time(cls, value: Any) -> Any:
        if isinstance(value, int):  # YAML 1.1 reads an unquoted 22:00 as the base-60 number 1320
            raise ValueError('write times as quoted strings, e.g. "22:00"')
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r}") from e
        return value


class Policy(PolicyModel):
    """The whole policy file."""

    version: str = Field("unversioned", min_length=1, description="Version label, recorded with decisions")
    rings: list[RingPolicy] = Field(description="Rings 0-4, each exactly once, in order")
    roles: RoleMapping = Field(default_factory=RoleMapping, description="User and group role mapping")
    identity: IdentityPolicy = Field(default_factory=IdentityPolicy, description="Who may name a user")
    risk: RiskPolicy = Field(default_factory=RiskPolicy, description="Risk thresholds")
    remediation: RemediationLimits = Field(default_factory=RemediationLimits, description="Remediation limits")
    windows: list[ChangeWindow] = Field(default_factory=list, description="Change windows")

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """Let `risk:` with no value mean the defaults, as `risk: {}` does."""
        if isinstance(data, dict):
            defaults: dict[str, Any] = {"roles": {}, "identity": {}, "risk": {}, "remediation": {}, "windows": []}
            return {k: (defaults[k] if k in defaults and v is None else v) for k, v in data.items()}
        return data

    @field_validator("rings")
    @classmethod
    def _all_five_rings(cls, value: list[RingPolicy]) -> list[RingPolicy]:
        numbers = [r.ring for r in value]
        if numbers != list(range(len(RING_NAMES))):
            got = ", ".join(map(str, numbers)) or "none"
            raise ValueError(f"must list rings 0, 1, 2, 3, 4 exactly once, in order (got {got})")
        return value

    def ring(self, number: int) -> RingPolicy:
        """The policy of ring `number` (0-4)."""
        return self.rings[number]

    def role_for(self, user: str, groups: Iterable[str] = ()) -> Role:
        """The one role of `user` (see the module docstring for how ties are broken)."""
        if user in self.roles.users:
            return self.roles.users[user]
        held = {self.roles.groups[g] for g in groups if g in self.roles.groups}
        return next((role for role in ROLE_PRECEDENCE if role in held), Role.VIEWER)

    def permissions_for(self, user: str, groups: Iterable[str] = ()) -> frozenset[Permission]:
        """The permissions of `user`'s role."""
        return ROLE_PERMISSIONS[self.role_for(user, groups)]


class PolicyError(Exception):
    """The policy file is missing, not YAML, or invalid; the message names the file and field path."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, which would otherwise silently override a role."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_SHIPPED = "controller/policy/dev.yaml"


def load_policy(path: Path | str | None = None) -> Policy:
    """Read and validate the policy at `path`, or the shipped dev policy when `path` is None."""
    if path is None:
        text = (resources.files("controller") / "policy" / "dev.yaml").read_text(encoding="utf-8")
        return parse_policy(text, source=_SHIPPED)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise PolicyError(f"{path}: cannot read: {e.strerror or e}") from e
    return parse_policy(text, source=str(path))


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Validate policy YAML `text`; `source` names it in errors (a path, or a ConfigMap key)."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise PolicyError(f"{source}: {where}{problem}") from e
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: top level must be a mapping with at least `rings`")
    try:
        return Policy.model_validate(data)
    except ValidationError as e:
        raise PolicyError(_describe(source, e)) from e


def _describe(source: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {path}: {message}")
    return "\n".join(lines)
