"""Evidence packs (docs/domain.md §5, adapted to workloads) and the plan digest approvals bind to.

Pure. A pack is a JSON document: the intent, the artifact, the targets per ring, a snapshot of what
runs now, the risk assessment with every factor, the rollback plan and the gates. Its identity is
the SHA-256 of its canonical JSON (sorted keys, no whitespace, UTF-8); the store
(controller/orchestration/evidencestore.py) recomputes that hash on every read.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.api.deploymenttask import DeploymentTaskSpec, PlanRecord, RiskAssessment
from controller.api.identity import SYSTEM_USER
from controller.api.policy import RING_NAMES, Policy
from controller.orchestration.declaring import spec_declarer
from controller.orchestration.gates import settings_for
from controller.orchestration.risk import declarations

SCHEMA = "ringpilot.dev/evidence-pack/v1"
#: Targets listed by name per ring; bigger rings are summarized (count and versions).
LISTED_TARGETS = 100


def canonical_json(document: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes that are hashed."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_of(document: Any) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


def plan_document(
    spec: DeploymentTaskSpec, risk: RiskAssessment, policy: Policy, declared_by: str = ""
) -> dict[str, Any]:
    """What an approval approves: app, version, reach, risk (with who declared each input) and the gates."""
    gates = [settings_for(r, spec, policy, None) for r in range(spec.max_ring + 1)]
    return {
        "app": spec.app,
        "version": spec.version,
        "artifact": spec.artifact,
        "action": spec.action.value,
        "plane": spec.plane.value,
        "maxRing": spec.max_ring,
        "risk": {
            "score": risk.score,
            "modelVersion": risk.model_version,
            "inputs": spec.risk.to_wire(),
            "declaredBy": declarations(spec.risk, declared_by or spec_declarer(spec), spec.artifact, policy),
            "cabFromRing": risk.cab_from_ring,
            "requiredApprovals": risk.required_approvals,
        },
        "gates": [{"ring": g.ring, "threshold": g.threshold, "soakSeconds": g.soak_seconds} for g in gates],
        "monitor": spec.monitor.to_wire(),
        "policyVersion": policy.version,
    }


def plan_digest(spec: DeploymentTaskSpec, risk: RiskAssessment, policy: Policy, declared_by: str = "") -> str:
    return sha256_of(plan_document(spec, risk, policy, declared_by))


@dataclass(frozen=True)
class TargetState:
    """One target as observed while the pack was built."""

    ring: int
    key: str
    version: str | None
    image: str | None
    available: bool
    present: bool = True


def _ring_block(ring: int, states: list[TargetState]) -> dict[str, Any]:
    versions = Counter(s.version or "unknown" for s in states)
    block: dict[str, Any] = {
        "ring": ring,
        "name": f"ring-{ring}-{RING_NAMES[ring].value.lower()}",
        "targetCount": len(states),
        "versions": dict(sorted(versions.items())),
        "available": sum(1 for s in states if s.available),
    }
    if len(states) <= LISTED_TARGETS:
        block["targets"] = [
            {
                "target": s.key,
                "version": s.version,
                "image": s.image,
                "available": s.available,
                "present": s.present,
            }
            for s in sorted(states, key=lambda s: s.key)
        ]
    return block


def build_pack(
    *,
    pack_id: str,
    created_at: datetime,
    correlation_id: str,
    task: dict[str, Any],
    spec: DeploymentTaskSpec,
    plan: PlanRecord,
    risk: RiskAssessment,
    policy: Policy,
    states: list[TargetState],
    declared_by: str = "",
) -> dict[str, Any]:
    """The pack for one plan of one task; `states` is the snapshot of every target in scope."""
    by_ring = {r: [s for s in states if s.ring == r] for r in range(spec.max_ring + 1)}
    current = sorted({s.version for s in states if s.version and s.version != spec.version})
    gates = [settings_for(r, spec, policy, None) for r in range(spec.max_ring + 1)]
    rollback_strategy = "image-restore" if spec.plane.value == "kubernetes" else "version-pin"
    return {
        "schema": SCHEMA,
        "evidencePackId": pack_id,
        "createdAt": created_at.isoformat(),
        "createdBy": SYSTEM_USER,
        "correlationId": correlation_id,
        "deploymentTask": task,
        "planDigest": plan.digest,
        "intent": {
            "app": spec.app,
            "version": spec.version,
            "action": spec.action.value,
            "maxRing": spec.max_ring,
            "plane": spec.plane.value,
            "requestedBy": spec.requested_by,
            "reason": spec.reason,
        },
        "artifact": {"repository": spec.artifact, "tag": spec.version},
        "rolloutPlan": {
            "rings": [_ring_block(r, by_ring[r]) for r in range(spec.max_ring + 1)],
            "monitor": spec.monitor.to_wire(),
        },
        "riskAssessment": risk.to_wire(),
        "riskInputs": {
            "declared": spec.risk.to_wire(),
            "declaredBy": declarations(spec.risk, declared_by or spec_declarer(spec), spec.artifact, policy),
        },
        "rollbackPlan": {
            "strategy": rollback_strategy,
            "rollbackVersions": current,
            "automatic": "every ring already updated is rolled back when a ring's gate fails (no CAB)",
        },
        "gates": [
            {
                "ring": g.ring,
                "successThreshold": g.threshold,
                "minSoakSeconds": g.soak_seconds,
                "deployTimeoutSeconds": g.deploy_timeout_seconds,
                "cabApprovalRequired": risk.cab_from_ring is not None and g.ring >= risk.cab_from_ring,
            }
            for g in gates
        ],
        "policyVersion": policy.version,
    }
