"""Evidence packs: canonical JSON, the plan digest approvals bind to, the pack's content."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from controller.api.deploymenttask import DeploymentTaskSpec, PlanRecord
from controller.api.policy import load_policy
from controller.orchestration import risk
from controller.orchestration.evidence import (
    LISTED_TARGETS,
    SCHEMA,
    TargetState,
    build_pack,
    canonical_json,
    plan_digest,
    sha256_of,
)

POLICY = load_policy()


def spec(**extra: object) -> DeploymentTaskSpec:
    return DeploymentTaskSpec.model_validate({"app": "shop", "version": "2.0.0", "maxRing": 1, **extra})


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": "é", "c": None}]}) == '{"a":[1,{"c":null,"d":"é"}],"b":1}'.encode()
    assert sha256_of({"a": 1, "b": 2}) == sha256_of(json.loads('{"b": 2, "a": 1}'))


def test_the_plan_digest_changes_with_the_plan_but_not_with_cancel_or_reason() -> None:
    s = spec()
    assessment = risk.assess(s.risk, s.max_ring, s.app, POLICY)
    digest = plan_digest(s, assessment, POLICY)
    assert digest == plan_digest(spec(cancel=True, reason="later"), assessment, POLICY)
    wider = spec(maxRing=2)
    assert plan_digest(wider, risk.assess(wider.risk, 2, "shop", POLICY), POLICY) != digest
    other = spec(version="2.0.1")
    assert plan_digest(other, assessment, POLICY) != digest


def test_a_pack_has_every_block_and_summarizes_big_rings() -> None:
    s = spec(requestedBy="dev-publisher", reason="INC-1")
    assessment = risk.assess(s.risk, 1, "shop", POLICY)
    plan = PlanRecord(
        digest="c" * 64,
        generation=1,
        app="shop",
        version="2.0.0",
        action=s.action,
        plane=s.plane,
        max_ring=1,
        targets=[2, LISTED_TARGETS + 1],
        submitter="dev-publisher",
    )
    states = [
        TargetState(0, "ring-0-lab/shop", "1.0.0", "r/shop:1.0.0", True),
        TargetState(0, "ring-0-lab/shop-2", "2.0.0", "r/shop:2.0.0", False),
    ]
    states += [TargetState(1, f"dev-{i}", "1.0.0", None, True) for i in range(LISTED_TARGETS + 1)]
    pack = build_pack(
        pack_id="p1",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        correlation_id="c1",
        task={"name": "t"},
        spec=s,
        plan=plan,
        risk=assessment,
        policy=POLICY,
        states=states,
    )
    assert pack["schema"] == SCHEMA
    assert set(pack) >= {
        "intent",
        "artifact",
        "rolloutPlan",
        "riskAssessment",
        "rollbackPlan",
        "gates",
        "planDigest",
        "correlationId",
        "evidencePackId",
    }
    ring0, ring1 = pack["rolloutPlan"]["rings"]
    assert ring0["versions"] == {"1.0.0": 1, "2.0.0": 1}
    assert [t["target"] for t in ring0["targets"]] == ["ring-0-lab/shop", "ring-0-lab/shop-2"]
    assert "targets" not in ring1 and ring1["targetCount"] == LISTED_TARGETS + 1
    assert pack["rollbackPlan"]["rollbackVersions"] == ["1.0.0"]
    assert pack["rollbackPlan"]["strategy"] == "image-restore"
    assert [g["successThreshold"] for g in pack["gates"]] == [0.95, 0.98]
    assert len(pack["riskAssessment"]["factors"]) == 8
    assert sha256_of(pack) == sha256_of(json.loads(canonical_json(pack)))
