"""The execution-plane protocol (ARCHITECTURE.md §3) and the values that cross it.

Orchestration (deploy, monitor, roll back a ring) and remediation (observe, install, restart,
re-apply config) talk to a plane only through `ExecutionPlane`. Every mutating call takes an
idempotency key derived from the correlation ID and step: calling twice with the same key
has the effect of calling once. The ring-wide calls act target by target unless a plane
overrides them (the simulator changes a whole ring in one statement).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class PlaneError(Exception):
    """A plane call failed; `transient` says whether retrying may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        self.transient = transient
        super().__init__(message)


@dataclass(frozen=True)
class TargetRef:
    """One target: a workload (kubernetes plane) or a device (simulated plane)."""

    plane: str
    app: str
    ring: int
    namespace: str | None = None
    name: str | None = None
    address: str | None = None

    @property
    def key(self) -> str:
        return self.address or f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Observation:
    """What a plane sees on one target right now."""

    target: TargetRef
    present: bool
    version: str | None = None
    image: str | None = None
    config_sha256: str | None = None
    available: bool = False
    replicas: int = 0
    ready_replicas: int = 0
    updated: bool = False
    unavailable_since: datetime | None = None
    detail: str = ""
    #: Name of the ConfigMap whose data `config_sha256` hashes (kubernetes plane; None elsewhere).
    config_map: str | None = None


@dataclass(frozen=True)
class RingHealth:
    """Health of an app's targets in one ring, as a gate evaluates it."""

    ring: int
    targets: int
    updated: int
    healthy: int
    failed: int
    observations: tuple[Observation, ...] = field(default_factory=tuple)

    @property
    def success_rate(self) -> float | None:
        return None if self.targets == 0 else self.healthy / self.targets


@dataclass(frozen=True)
class ActionResult:
    """Outcome of one mutating call."""

    target: TargetRef
    changed: bool
    detail: str = ""
    previous_version: str | None = None
    #: True when the idempotency key had already been used: nothing was done, the recorded result is returned.
    replayed: bool = False


@dataclass(frozen=True)
class RingResult:
    """Outcome of a ring-wide call: the ring's targets, how many changed, and what was done to each.

    `actions` holds one result per target acted on. A plane that changes a ring in one statement
    (`whole_ring`) reports only the counts.
    """

    app: str
    ring: int
    targets: int
    changed: int
    actions: tuple[ActionResult, ...] = ()
    whole_ring: bool = False
    #: True when the idempotency key had already been used for the whole ring: the recorded counts are returned.
    replayed: bool = False


class ExecutionPlane(Protocol):
    """What a plane must offer. A plane subclasses it to inherit the per-target ring-wide calls."""

    name: str

    async def targets(self, app: str, ring: int) -> list[TargetRef]:
        """The app's targets in a ring."""
        ...

    async def observe(self, targets: list[TargetRef]) -> list[Observation]:
        """Observe many targets with as few calls as possible (one list per namespace or ring)."""
        ...

    async def health(self, app: str, ring: int, version: str) -> RingHealth:
        """The ring's health for `version`: targets updated to it and healthy."""
        ...

    async def apply(self, target: TargetRef, version: str, artifact: str | None, key: str) -> ActionResult:
        """Run `version` on the target (deploy or update), recording what was there before."""
        ...

    async def rollback(self, target: TargetRef, key: str) -> ActionResult:
        """Restore the version recorded before the last apply."""
        ...

    async def apply_ring(self, app: str, ring: int, version: str, key: str, artifact: str | None = None) -> RingResult:
        """Run `version` on every target of the app in the ring: one `apply` per target unless overridden."""
        refs = await self.targets(app, ring)
        actions = tuple([await self.apply(target, version, artifact, key) for target in refs])
        return RingResult(app, ring, len(refs), sum(int(a.changed) for a in actions), actions)

    async def rollback_ring(self, app: str, ring: int, key: str, targets: list[TargetRef] | None = None) -> RingResult:
        """Restore the previous version on `targets` (None: the whole ring): one `rollback` per target unless
        overridden."""
        refs = await self.targets(app, ring) if targets is None else targets
        actions = tuple([await self.rollback(target, key) for target in refs])
        return RingResult(app, ring, len(refs), sum(int(a.changed) for a in actions), actions)

    async def install(self, target: TargetRef, key: str) -> ActionResult:
        """Re-create a missing target from the manifest recorded when it was last applied."""
        ...

    async def restart(self, target: TargetRef, key: str) -> ActionResult:
        """Restart the target (a rollout restart)."""
        ...

    async def reapply_config(self, target: TargetRef, key: str) -> ActionResult:
        """Restore the target's configuration to the recorded one."""
        ...


#: The plane calls that only read. The worker records no span of their own: the step's span already times
#: them, and a Monitor step, the most frequent of all, is one health read (see `PLANE_ACTIONS`).
PLANE_READS = frozenset({"targets", "observe", "health"})
#: The plane calls that change a target: each is a span `plane <name>.<call>` in its step's trace.
PLANE_ACTIONS = frozenset({"apply", "rollback", "apply_ring", "rollback_ring", "install", "restart", "reapply_config"})
