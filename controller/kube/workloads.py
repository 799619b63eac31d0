"""Which Deployments are workloads: the one discovery rule the planes, the chat tools and the probes share.

A workload is a Deployment labelled `app.kubernetes.io/name=<app>` (`APP_NAME_LABEL`) in a namespace
labelled `ringpilot.dev/ring=<n>` (`RING_NAMESPACE_LABEL`); the namespace's label is the workload's ring.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from controller.api.labels import APP_NAME_LABEL, RING_NAMESPACE_LABEL
from controller.kube.client import Json
from controller.kube.coreapps import CoreApps

T = TypeVar("T")


@dataclass(frozen=True)
class Found:
    """One workload as listed: its namespace, that namespace's ring and the Deployment's JSON."""

    namespace: str
    ring: int
    deployment: Json

    @property
    def name(self) -> str:
        return str((self.deployment.get("metadata") or {}).get("name"))

    @property
    def app(self) -> str:
        meta = self.deployment.get("metadata") or {}
        return str((meta.get("labels") or {}).get(APP_NAME_LABEL, meta.get("name")))


def app_selector(apps: Iterable[str] | None = None) -> str:
    """Label selector for Deployments of one or several apps (any app when `apps` is None or empty)."""
    names = sorted(set(apps or ()))
    if not names:
        return APP_NAME_LABEL
    if len(names) == 1:
        return f"{APP_NAME_LABEL}={names[0]}"
    return f"{APP_NAME_LABEL} in ({','.join(names)})"


async def bounded(calls: Iterable[Awaitable[T]], concurrency: int) -> list[T]:
    """Await `calls` with at most `concurrency` in flight (a semaphore per batch, so any loop works)."""
    limit = asyncio.Semaphore(concurrency)

    async def one(call: Awaitable[T]) -> T:
        async with limit:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def ring_namespaces(api: CoreApps, ring: int | None = None) -> dict[str, int]:
    """Namespace → ring for every ring namespace (or only those of `ring`); a label that is no number is skipped."""
    selector = f"{RING_NAMESPACE_LABEL}={ring}" if ring is not None else RING_NAMESPACE_LABEL
    found: dict[str, int] = {}
    for namespace in await api.list_namespaces(selector):
        meta = namespace.get("metadata") or {}
        try:
            found[str(meta["name"])] = int((meta.get("labels") or {})[RING_NAMESPACE_LABEL])
        except (KeyError, ValueError):
            continue
    return dict(sorted(found.items()))


async def find_workloads(
    api: CoreApps, *, ring: int | None = None, apps: Iterable[str] | None = None, concurrency: int = 8
) -> list[Found]:
    """The workloads of `apps` (all apps when None) in `ring` (every ring when None).

    With a ring, one Deployment list per ring namespace (at most `concurrency` at once); without one, a
    single list across namespaces, kept to the ring namespaces.
    """
    rings = await ring_namespaces(api, ring)
    selector = app_selector(apps)
    if ring is not None:
        namespaces = list(rings)
        listings = await bounded((api.list_deployments(ns, selector) for ns in namespaces), concurrency)
        return [Found(ns, rings[ns], d) for ns, items in zip(namespaces, listings, strict=True) for d in items]
    everywhere = await api.list_deployments_everywhere(selector)
    return [
        Found(str(d["metadata"]["namespace"]), rings[d["metadata"]["namespace"]], d)
        for d in everywhere
        if (d.get("metadata") or {}).get("namespace") in rings
    ]
