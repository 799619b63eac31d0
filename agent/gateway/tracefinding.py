"""Everything one correlation ID touched, in time order: the query behind `GET /api/v1/traces/{id}`.

`find_trace` joins the database half (`tracerows.database_entries`) with the cluster half read with
the caller's Kubernetes client, so RBAC decides what they see: every Ringpilot object carrying the
correlation-ID label, a DeploymentTask's steps from its status, and the Events posted on those
objects. Kinds the caller may not list are left out rather than failing the whole trace.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from agent.gateway.consoleviews import ObjectRef, Trace, TraceEntry
from agent.gateway.tracerows import Viewer, clip, database_entries
from controller.api.deploymenttask import DeploymentTaskStatus
from controller.api.kinds import DEPLOYMENT_TASK, KINDS, KindInfo
from controller.api.labels import CORRELATION_LABEL
from controller.kube.client import CustomObjects, Json
from controller.kube.coreapps import CoreApps
from controller.kube.errors import KubeError
from controller.storage.db import Pool

#: Events are read for at most this many objects of one trace.
EVENT_OBJECTS_LIMIT = 50


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp of the Kubernetes API (`...Z`), or None."""
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _objects_of(objects: CustomObjects, info: KindInfo, correlation_id: str) -> list[Json]:
    try:
        return await objects.list_raw(info, None, label_selector=f"{CORRELATION_LABEL}={correlation_id}")
    except KubeError as error:
        if error.status in (401, 403, 404):  # this caller may not list the kind, or it is not served
            return []
        raise


def _ref(info: KindInfo, body: Json) -> ObjectRef:
    meta = body.get("metadata") or {}
    return ObjectRef(kind=info.kind, namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""))


def object_entries(info: KindInfo, body: Json) -> list[TraceEntry]:
    """The object's creation, and a DeploymentTask's steps as its status records them."""
    ref = _ref(info, body)
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    entries: list[TraceEntry] = []
    created = parse_time(meta.get("creationTimestamp"))
    actor = spec.get("requestedBy") or spec.get("submittedBy") or spec.get("user")
    if created is not None:
        entries.append(
            TraceEntry(
                at=created,
                source="object",
                kind=ref.kind,
                namespace=ref.namespace,
                name=ref.name,
                what="Created",
                actor=actor,
                detail=_object_detail(info, body),
            )
        )
    if info is DEPLOYMENT_TASK:
        status = DeploymentTaskStatus.model_validate(body.get("status") or {})
        for step in status.steps:
            at = step.started_at or step.finished_at
            if at is None:
                continue
            ring = f" ring {step.ring}" if step.ring is not None else ""
            took = ""
            if step.started_at is not None and step.finished_at is not None:
                took = f" in {(step.finished_at - step.started_at).total_seconds():.1f} s"
            message = f": {clip(step.message, 160)}" if step.message else ""
            entries.append(
                TraceEntry(
                    at=at,
                    source="step",
                    kind=ref.kind,
                    namespace=ref.namespace,
                    name=ref.name,
                    what=f"{step.name.value}{ring}",
                    detail=f"{step.state.value}{took}, attempt {step.attempts}{message}",
                )
            )
    return entries


def _object_detail(info: KindInfo, body: Json) -> str:
    spec, status = body.get("spec") or {}, body.get("status") or {}
    phase = status.get("phase")
    if info.kind in ("DeploymentTask", "ChangeRequest"):
        text = f"{spec.get('app')}@{spec.get('version')} to ring {spec.get('maxRing')}"
        return f"{text}, {phase}" if phase else text
    if info.kind == "Conversation":
        return f"{len(spec.get('messages') or [])} messages"
    return str(phase or "")


async def _events_of(core: CoreApps, ref: ObjectRef) -> list[TraceEntry]:
    selector = f"involvedObject.kind={ref.kind},involvedObject.name={ref.name}"
    try:
        events = await core.list_events(ref.namespace, selector)
    except KubeError as error:
        if error.status in (401, 403):
            return []
        raise
    entries = []
    for event in events:
        at = (
            parse_time(event.get("lastTimestamp"))
            or parse_time(event.get("eventTime"))
            or parse_time(event.get("firstTimestamp"))
            or parse_time((event.get("metadata") or {}).get("creationTimestamp"))
        )
        if at is None:
            continue
        warning = "Warning " if event.get("type") == "Warning" else ""
        entries.append(
            TraceEntry(
                at=at,
                source="event",
                kind=ref.kind,
                namespace=ref.namespace,
                name=ref.name,
                what=str(event.get("reason") or "Event"),
                actor=((event.get("source") or {}).get("component")),
                detail=warning + clip(str(event.get("message") or "")),
            )
        )
    return entries


def _trace_ids(entries: list[TraceEntry]) -> list[str]:
    seen: dict[str, None] = {}
    for entry in entries:
        if entry.trace_id:
            seen.setdefault(entry.trace_id, None)
    return list(seen)


async def find_trace(pool: Pool, objects: CustomObjects, core: CoreApps, correlation_id: str, viewer: Viewer) -> Trace:
    """Every entry under `correlation_id`, oldest first (ties keep the order of the sources)."""
    listings = await asyncio.gather(*(_objects_of(objects, info, correlation_id) for info in KINDS))
    refs: list[ObjectRef] = []
    entries = await database_entries(pool, correlation_id, viewer)
    for info, bodies in zip(KINDS, listings, strict=True):
        for body in bodies:
            refs.append(_ref(info, body))
            entries.extend(object_entries(info, body))
    for found in await asyncio.gather(*(_events_of(core, ref) for ref in refs[:EVENT_OBJECTS_LIMIT])):
        entries.extend(found)
    ordered = sorted(enumerate(entries), key=lambda pair: (pair[1].at, pair[0]))
    timeline = [entry for _, entry in ordered]
    return Trace(correlation_id=correlation_id, trace_ids=_trace_ids(timeline), objects=refs, entries=timeline)
