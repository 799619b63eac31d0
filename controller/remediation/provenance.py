"""Remediation restores; it never introduces (docs/domain.md §6.1): the target's real ring, and known states.

An Assignment says what one target must run, but not everything it says is taken on trust:

- its ring comes from the target itself (the namespace's `ringpilot.dev/ring` label on the kubernetes
  plane, the device's record on the simulated one); a different `spec.ring` is InvalidSpec;
- an autonomous fix may only bring the target back to a version Ringpilot knows for that ring: one a
  DeploymentTask delivered there (`rollout_history`), one the kubernetes plane recorded on the workload
  other than by a remediation (its first sighting, or a rollout's apply), or, on a device, the version
  its last change replaced.
  Any other version is a deploy request, and deploy requests go through a DeploymentTask.

`PgProvenance` reads the API server and PostgreSQL; `problem` is the pure rule on what it found.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from controller.api.assignment import Assignment, AssignmentSpec
from controller.api.deploymenttask import PlaneName
from controller.api.identity import SYSTEM_USER
from controller.api.labels import RING_NAMESPACE_LABEL
from controller.api.meta import ConditionStatus
from controller.api.semantics import SpecProblem
from controller.core import conditions
from controller.core.conditions import INVALID_SPEC, READY
from controller.core.outcome import AuditNote, EventNote
from controller.kube.client import ApiClient
from controller.kube.coreapps import CoreApps
from controller.remediation.detecting import CheckResult
from controller.storage.db import Pool

_DELIVERED = """
SELECT 1 FROM rollout_history
WHERE app = %s AND plane = %s AND ring = %s AND to_version = %s AND changed > 0
LIMIT 1
"""
#: A version the kubernetes plane recorded on the workload other than by a remediation (acting.plane_key): the first
#: sighting (snapshot), or an apply or rollback of a rollout step.
_RECORDED = """
SELECT 1 FROM plane_manifests
WHERE namespace = %s AND name = %s AND right(image, %s) = %s
  AND (idempotency_key IS NULL OR idempotency_key NOT LIKE '%%/remediation-%%')
LIMIT 1
"""
_DEVICE = "SELECT ring, previous_version FROM sim_devices WHERE app = %s AND address = %s"


@dataclass(frozen=True)
class Provenance:
    """What the world says about an Assignment's target: its ring (None: unknown) and the desired version."""

    ring: int | None
    known_version: bool


class ProvenanceSource(Protocol):
    async def __call__(self, spec: AssignmentSpec) -> Provenance: ...


def problem(spec: AssignmentSpec, found: Provenance) -> SpecProblem | None:
    """The field an Assignment gets wrong about its target, or None."""
    where = spec.target.namespace if spec.target.plane is PlaneName.KUBERNETES else spec.target.address
    if found.ring is not None and found.ring != spec.ring:
        return SpecProblem(
            "spec.ring",
            f"is {spec.ring} but the target {where} is in ring {found.ring} (its "
            + ("namespace's ring label" if spec.target.plane is PlaneName.KUBERNETES else "fleet record")
            + ")",
        )
    if not found.known_version:
        ring = found.ring if found.ring is not None else spec.ring
        return SpecProblem(
            "spec.version",
            f"{spec.app} {spec.version} was never delivered to ring {ring} "
            "by a DeploymentTask: a remediation restores, it never introduces - use a DeploymentTask to ship it",
        )
    return None


def refused_check(
    raw_status: dict[str, Any], asg: Assignment, bad: SpecProblem | None, now: datetime, interval_seconds: float
) -> CheckResult | None:
    """The drift check's result for an Assignment that gets its target wrong: InvalidSpec, no Remediation.

    None when `bad` is None (the normal check runs). The Event and audit row go out when it is first seen.
    """
    if bad is None:
        return None
    generation = asg.metadata.generation
    reason = "RingMismatch" if bad.field == "spec.ring" else "DeployRequest"
    body = {"status": raw_status}
    conds = conditions.current_conditions(body)
    was = conditions.find(conds, INVALID_SPEC)
    conds = conditions.set_condition(conds, conditions.make(INVALID_SPEC, True, reason, str(bad), generation, now))
    conds = conditions.set_condition(conds, conditions.make(READY, False, INVALID_SPEC, str(bad), generation, now))
    desired = {
        "observedGeneration": generation,
        "conditions": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conds],
    }
    status = conditions.delta(raw_status, desired)
    fresh = was is None or was.status is not ConditionStatus.TRUE or was.message != str(bad)
    return CheckResult(
        status=status,
        next_check_at=now + timedelta(seconds=interval_seconds),
        events=(EventNote(reason, f"Assignment refused: {bad}", "Warning"),) if fresh else (),
        audits=(AuditNote(f"Assignment{reason}", SYSTEM_USER, str(bad)),) if fresh else (),
    )


def cleared(result: CheckResult, raw_status: dict[str, Any], generation: int, now: datetime) -> CheckResult:
    """`result` with an earlier InvalidSpec of the target check set False (the Assignment is fine now)."""
    body = {"status": {**raw_status, **result.status}}
    conds = conditions.current_conditions(body)
    was = conditions.find(conds, INVALID_SPEC)
    if was is None or was.status is not ConditionStatus.TRUE:
        return result
    conds = conditions.set_condition(
        conds, conditions.make(INVALID_SPEC, False, "TargetConfirmed", "", generation, now)
    )
    wire = [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conds]
    return replace(result, status={**result.status, "conditions": wire})


class PgProvenance:
    """`ProvenanceSource` over the API server (namespace labels) and PostgreSQL (history, snapshots, fleet)."""

    #: How long one list of the ring namespaces answers every check (a relabelled namespace is seen after this).
    RINGS_TTL_SECONDS = 30.0

    def __init__(self, api_client: ApiClient, pool: Pool) -> None:
        self.core = CoreApps(api_client)
        self.pool = pool
        self._rings: tuple[float, dict[str, int | None]] = (float("-inf"), {})

    async def ring_of_namespace(self, namespace: str) -> int | None:
        """The ring a namespace's label names, from one list of the ring namespaces per `RINGS_TTL_SECONDS`."""
        at, rings = self._rings
        if time.monotonic() - at >= self.RINGS_TTL_SECONDS:
            rings = {}
            for ns in await self.core.list_namespaces(RING_NAMESPACE_LABEL):
                meta = ns.get("metadata") or {}
                label = str((meta.get("labels") or {}).get(RING_NAMESPACE_LABEL, ""))
                rings[str(meta.get("name"))] = int(label) if label.isdigit() else None
            self._rings = (time.monotonic(), rings)
        return rings.get(namespace)

    async def __call__(self, spec: AssignmentSpec) -> Provenance:
        target = spec.target
        ring: int | None = None
        previous: str | None = None
        if target.plane is PlaneName.KUBERNETES and target.namespace:
            ring = await self.ring_of_namespace(target.namespace)
        async with self.pool.connection() as conn:
            if target.plane is PlaneName.SIMULATED and target.address:
                row = await (await conn.execute(_DEVICE, (spec.app, target.address))).fetchone()
                if row is not None:
                    ring, previous = int(row["ring"]), row["previous_version"]
            where = ring if ring is not None else spec.ring
            params = (spec.app, target.plane.value, where, spec.version)
            known = await (await conn.execute(_DELIVERED, params)).fetchone() is not None
            if not known and target.plane is PlaneName.KUBERNETES and target.namespace and target.name:
                tag = f":{spec.version}"
                snapshot = (target.namespace, target.name, len(tag), tag)
                known = await (await conn.execute(_RECORDED, snapshot)).fetchone() is not None
        return Provenance(ring, known or previous == spec.version)
