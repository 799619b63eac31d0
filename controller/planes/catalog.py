"""Execution planes by name: what a DeploymentTask's or an Assignment's `plane` field selects.

Workers and the controller call `build_plane(name, api_client=…, pool=…)` once per process and plane,
and then talk to the result only through the `ExecutionPlane` protocol (controller/planes/base.py).
"""

from __future__ import annotations

from typing import Any

from controller.planes.base import ExecutionPlane
from controller.planes.kubernetes import KubernetesPlane
from controller.planes.simulated import SimulatedPlane
from controller.storage.db import Pool

#: Every plane name `build_plane` knows; `kubernetes` is the default (ARCHITECTURE.md §3).
PLANE_NAMES = ("kubernetes", "simulated")
DEFAULT_PLANE = "kubernetes"


class UnknownPlaneError(ValueError):
    """No execution plane has that name."""


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
