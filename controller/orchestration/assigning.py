"""The Assignment writer: after a ring is deployed or rolled back, one Assignment per target says what runs.

Called by the Deploy and Rollback steps in the worker with the plane's observations of the ring's
targets. Names are deterministic per target (`<namespace>-<name>` for workloads, `<app>-<address>`
for simulated devices), so a repeated step updates instead of duplicating. A ring's Assignments are
written as one batch, `WRITES_AT_ONCE` calls at a time, after listing only the Assignments that can
be the app's: those labelled with it, and those with no app label at all (a target someone already
assigned by hand, e.g. with kubectl, keeps its Assignment). The rest of the namespace is not read.
Only the desired-state fields are written (app, version, artifact, ring, target, config,
correlation); criticality and drift settings a user chose are left alone. The first status is the
drift sweep's (remediation/detecting.py `first_seen`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any

from controller.api.assignment import Assignment, AssignmentSpec, AssignmentStatus, ConfigRef, Target
from controller.api.deploymenttask import PlaneName
from controller.api.kinds import ASSIGNMENT
from controller.api.labels import ASSIGNMENT_RING_LABEL, CORRELATION_LABEL, OBJECT_APP_LABEL
from controller.api.meta import ObjectMeta
from controller.kube.client import ApiClient, CustomObjects, KubeError
from controller.planes.base import Observation, TargetRef

logger = logging.getLogger(__name__)

#: Rings with more targets than this (simulated fleets) are not mirrored as Assignments.
MAX_ASSIGNMENTS_PER_RING = 500
#: Creates or updates of one ring's Assignments in flight at once (one batch; the API server takes no bulk create).
WRITES_AT_ONCE = 8
_UNSAFE = re.compile(r"[^a-z0-9-]+")


def assignment_name(target: TargetRef) -> str:
    """A DNS-1123 name for the target's Assignment, stable across rollouts."""
    raw = f"{target.namespace}-{target.name}" if target.address is None else f"{target.app}-{target.address}"
    name = _UNSAFE.sub("-", raw.lower()).strip("-")
    if len(name) > 63 or name != raw.lower():
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = f"{name[:54].rstrip('-')}-{digest}"
    return name


def assignment_for(
    target: TargetRef,
    observation: Observation | None,
    *,
    version: str,
    artifact: str | None,
    namespace: str,
    correlation_id: str,
) -> Assignment:
    config = None
    if observation is not None and observation.config_map and observation.config_sha256:
        config = ConfigRef(config_map=observation.config_map, sha256=observation.config_sha256)
    spec = AssignmentSpec(
        app=target.app,
        version=version,
        artifact=artifact,
        ring=target.ring,
        target=Target(
            plane=PlaneName(target.plane),
            namespace=target.namespace,
            name=target.name,
            address=target.address,
        ),
        config=config,
        correlation_id=correlation_id,
    )
    labels = {CORRELATION_LABEL: correlation_id, OBJECT_APP_LABEL: target.app, ASSIGNMENT_RING_LABEL: str(target.ring)}
    meta = ObjectMeta(name=assignment_name(target), namespace=namespace, labels=labels)
    return Assignment(metadata=meta, spec=spec, status=AssignmentStatus())


def _target_key(target: dict[str, Any]) -> tuple[Any, ...]:
    return (target.get("plane", "kubernetes"), target.get("namespace"), target.get("name"), target.get("address"))


def app_selectors(apps: set[str]) -> list[str]:
    """The label selectors that find every Assignment of `apps`: ours are labelled, hand-made ones may not be."""
    return [f"{OBJECT_APP_LABEL}={app}" for app in sorted(apps)] + [f"!{OBJECT_APP_LABEL}"]


async def existing_by_target(objects: CustomObjects, namespace: str, apps: set[str]) -> dict[tuple[Any, ...], str]:
    """Names of the Assignments of `apps` already in `namespace`, by (app, target).

    One list per app by its label, and one of the unlabelled; the namespace's other apps are not read.
    """
    listed = await asyncio.gather(*(objects.list_raw(ASSIGNMENT, namespace, s) for s in app_selectors(apps)))
    items = {item["metadata"]["name"]: item for batch in listed for item in batch}
    found: dict[tuple[Any, ...], str] = {}
    for _, item in sorted(items.items()):
        spec = item.get("spec") or {}
        found.setdefault((spec.get("app"), *_target_key(spec.get("target") or {})), item["metadata"]["name"])
    return found


async def _upsert(objects: CustomObjects, assignment: Assignment, namespace: str, *, exists: bool = False) -> str:
    body = assignment.to_wire()
    if not exists:
        try:
            await objects.create_raw(ASSIGNMENT, namespace, body)
            return "created"
        except KubeError as error:
            if not error.conflict:
                raise
    patch: dict[str, Any] = {
        "metadata": {"labels": body["metadata"]["labels"]},
        "spec": {
            k: body["spec"].get(k) for k in ("app", "version", "artifact", "ring", "target", "config", "correlationId")
        },
    }
    await objects.patch(ASSIGNMENT, namespace, assignment.metadata.name, patch)
    return "updated"


async def write_assignments(
    api_client: ApiClient,
    namespace: str,
    correlation_id: str,
    targets: list[TargetRef],
    observations: list[Observation],
    *,
    version: str,
    artifact: str | None,
) -> int:
    """Create or update one Assignment per target; returns how many were written."""
    if len(targets) > MAX_ASSIGNMENTS_PER_RING:
        logger.info("Not mirroring %d targets as Assignments (limit %d)", len(targets), MAX_ASSIGNMENTS_PER_RING)
        return 0
    objects = CustomObjects(api_client)
    seen = {o.target.key: o for o in observations}
    # A target someone already assigned (e.g. with kubectl) keeps its Assignment: one per target.
    existing = await existing_by_target(objects, namespace, {t.app for t in targets})
    limit = asyncio.Semaphore(WRITES_AT_ONCE)

    async def write(target: TargetRef) -> None:
        assignment = assignment_for(
            target,
            seen.get(target.key),
            version=version,
            artifact=artifact,
            namespace=namespace,
            correlation_id=correlation_id,
        )
        name = existing.get((target.app, target.plane, target.namespace, target.name, target.address))
        if name is not None:
            meta = assignment.metadata.model_copy(update={"name": name})
            assignment = assignment.model_copy(update={"metadata": meta})
        async with limit:
            await _upsert(objects, assignment, namespace, exists=name is not None)

    await asyncio.gather(*(write(t) for t in targets))  # the first error is raised; the step is retried whole
    return len(targets)
