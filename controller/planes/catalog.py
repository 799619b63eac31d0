"""Execution planes by name: what a DeploymentTask's or an Assignment's `plane` field selects.

`build_plane(name, api_client=…, pool=…)` builds one plane; `PlaneSet` keeps one instance per name for
a whole process (the controller's and each worker's), built on first use. Callers talk to a plane only
through the `ExecutionPlane` protocol (controller/planes/base.py) and ask for it through `PlaneSource`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from controller.planes.base import ExecutionPlane
from controller.planes.idempotency import DEFAULT_STALE_CLAIM_SECONDS
from controller.planes.kubernetes import KubernetesPlane
from controller.planes.simulated import SimulatedPlane
from controller.storage.db import Pool

#: Every plane name `build_plane` knows; `kubernetes` is the default (ARCHITECTURE.md §3).
PLANE_NAMES = ("kubernetes", "simulated")
DEFAULT_PLANE = "kubernetes"


class UnknownPlaneError(ValueError):
    """No execution plane has that name."""


class PlaneSource(Protocol):
    """Where the engines get a plane by name (a `PlaneSet`, or a fake in tests)."""

    def get(self, name: str) -> ExecutionPlane: ...


def build_plane(name: str, *, api_client: Any, pool: Pool, **options: Any) -> ExecutionPlane:
    """The plane called `name`: `kubernetes` needs a `kubernetes.client.ApiClient`, `simulated` only the pool.

    `options` go to the plane's constructor (e.g. `concurrency`, `owner`, `seed`).
    """
    if name == KubernetesPlane.name:
        if api_client is None:
            raise ValueError("The kubernetes plane needs a kubernetes.client.ApiClient")
        return KubernetesPlane(api_client, pool, **options)
    if name == SimulatedPlane.name:
        return SimulatedPlane(pool, **options)
    raise UnknownPlaneError(f"Unknown execution plane {name!r}; known: {', '.join(PLANE_NAMES)}")


@dataclass
class PlaneSet:
    """One plane instance per name, built on first use.

    `owner` names this process in the planes' idempotency claims; a claim left unfinished by a silent
    owner is taken over after `stale_claim_seconds`.
    """

    api_client: Any
    pool: Pool
    owner: str | None = None
    stale_claim_seconds: float = DEFAULT_STALE_CLAIM_SECONDS
    planes: dict[str, ExecutionPlane] = field(default_factory=dict)

    def get(self, name: str) -> ExecutionPlane:
        if name not in self.planes:
            options: dict[str, Any] = {"owner": self.owner, "stale_claim_seconds": self.stale_claim_seconds}
            self.planes[name] = build_plane(name, api_client=self.api_client, pool=self.pool, **options)
        return self.planes[name]
