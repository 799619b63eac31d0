"""Issue 12's rules for the task engine, tick by tick: the controller owns what it wrote on a
ChangeRequest, decisions are judged once as first seen, risk is conservative when unknown, a loosening
gate override is refused, and an InvalidSpec task ends and blocks nothing."""

from __future__ import annotations

import json

from controller.api.changerequest import ChangePhase, Decision, DecisionOutcome
from controller.api.labels import RISK_DECLARED_BY_ANNOTATION, RISK_INPUTS_ANNOTATION
from controller.api.risk_inputs import RiskInputs
from controller.orchestration import risk
from controller.orchestration.ownership import verdict_for
from controller.reconcile.stamping import Requester, Review, refusal, stamp
from tests.orchestration.driver import LOW_RISK, POLICY, T0, FakeWorld, Run
from tests.orchestration.test_machine import HIGH_RISK

CI = "system:serviceaccount:ringpilot-system:ringpilot-ci"


async def test_a_lowered_quorum_on_the_change_request_is_restored_flagged_and_does_not_ship() -> None:
    run = Run({"risk": HIGH_RISK, "maxRing": 3})
    await run.until("AwaitingApproval")
    cr = run.world.change_requests["t1-cab"]
    assert cr["spec"]["requiredApprovals"] == 2
    for _ in range(3):
        await run.tick()
    assert "Tampered" not in [e.reason for e in run.cr_events]  # the controller's own copy matches itself
    cr["spec"]["requiredApprovals"] = 1
    run.decide("dev-approver")
    for _ in range(20):
        await run.tick()
    assert run.phase == "AwaitingApproval"  # one approval of the task's own quorum of two ships nothing
    assert cr["spec"]["requiredApprovals"] == 2  # restored
    tampered = next(c for c in cr["status"]["conditions"] if c["type"] == "Tampered")
    assert tampered["status"] == "True" and "spec.requiredApprovals" in tampered["message"]
    assert "Tampered" in [e.reason for e in run.cr_events]
    run.decide("cab-2")
    await run.until("Succeeded")


async def test_a_change_request_the_task_did_not_open_approves_nothing() -> None:
    run = Run({"risk": HIGH_RISK})
    await run.until("AwaitingApproval")
    cr = run.world.change_requests["t1-cab"]
    cr["metadata"]["ownerReferences"] = [{"kind": "DeploymentTask", "name": "t1", "uid": "someone-else"}]
    run.decide("dev-approver")
    for _ in range(10):
        await run.tick()
    assert run.phase == "AwaitingApproval"
    assert cr["status"]["approvals"] == 0
    ready = next(c for c in cr["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "NotOpenedByController"


async def test_removing_a_judged_approval_changes_no_outcome_and_is_flagged_once() -> None:
    run = Run({"risk": HIGH_RISK})
    await run.until("AwaitingApproval")
    run.decide("dev-approver")
    await run.until("Deploying", "Monitoring")
    cr = run.world.change_requests["t1-cab"]
    cr["spec"]["decisions"] = []
    await run.tick()
    await run.tick()
    assert cr["status"]["phase"] == "Approved"
    assert cr["status"]["outcomes"][0]["rewritten"]
    assert [e.reason for e in run.cr_events].count("DecisionRewritten") == 1
    assert "ApprovalVoided" not in [e.reason for e in run.cr_events]
    await run.until("Succeeded")


async def test_a_change_request_is_withdrawn_when_its_task_ends_before_a_decision() -> None:
    run = Run({"risk": HIGH_RISK})
    await run.until("AwaitingApproval")
    run.edit(cancel=True)
    await run.until("Cancelled")
    await run.tick()
    cr = run.world.change_requests["t1-cab"]
    assert cr["status"]["phase"] == "Withdrawn"
    assert "ChangeWithdrawn" in [e.reason for e in run.cr_events]


def test_the_task_counts_decisions_against_its_own_submitter_digest_and_quorum() -> None:
    def outcome(approver: str, digest: str = "a" * 64, decision: Decision = Decision.APPROVE) -> DecisionOutcome:
        return DecisionOutcome(approver=approver, decision=decision, accepted=True, plan_digest=digest)

    own = [outcome("dev-publisher"), outcome("dev-approver"), outcome("dev-approver")]
    assert verdict_for(own, ChangePhase.APPROVED, "a" * 64, "dev-publisher", 2).phase is None
    other_plan = [outcome("dev-approver", "b" * 64), outcome("cab-2")]
    assert verdict_for(other_plan, ChangePhase.APPROVED, "a" * 64, "dev-publisher", 2).approvals == 1
    two = [outcome("dev-approver"), outcome("cab-2"), outcome("cab-3", decision=Decision.REJECT)]
    assert verdict_for(two, None, "a" * 64, "dev-publisher", 2).phase is ChangePhase.APPROVED


def test_undeclared_risk_scores_as_unknown_and_a_ring_4_rollout_needs_the_cab() -> None:
    assessment = risk.assess(RiskInputs(), 4, "shop", POLICY)
    assert assessment.score == 100 and assessment.cab_required
    assert all("Unknown" in f.rationale for f in assessment.factors if f.name != "blast_radius")
    trusted = risk.assess(RiskInputs.model_validate(LOW_RISK), 4, "shop", POLICY, "registry.example.com/team/shop")
    supply = next(f for f in trusted.factors if f.name == "supply_chain_trust")
    assert "registry registry.example.com/team" in supply.rationale


def test_mutable_tags_and_unlisted_registries_are_refused_naming_the_field() -> None:
    found = risk.problems("latest", "evil.example.com/x", POLICY)
    assert [r for r, _ in found] == ["MutableTag", "RegistryNotAllowed"]
    assert found[0][1].startswith("spec.version") and found[1][1].startswith("spec.artifact")
    assert risk.problems("1.2.3", "registry.example.com/team/shop", POLICY) == []


async def test_an_unlisted_registry_and_a_loosening_gate_end_the_task_as_invalid() -> None:
    run = Run({"artifact": "evil.example.com/x", "gates": [{"ring": 1, "successThreshold": 0.5}]})
    await run.until("Failed")
    assert run.condition("InvalidSpec")["reason"] == "RegistryNotAllowed"
    message = run.condition("InvalidSpec")["message"]
    assert "spec.artifact" in message and "spec.gates[0].successThreshold" in message


async def test_risk_from_a_trusted_annotation_counts_and_the_evidence_names_who_declared_it() -> None:
    run = Run({"risk": {}})
    run.body["metadata"]["annotations"] = {
        RISK_INPUTS_ANNOTATION: json.dumps(HIGH_RISK),
        RISK_DECLARED_BY_ANNOTATION: CI,
    }
    await run.until("AwaitingApproval")
    assert run.status["risk"]["score"] == risk.assess(RiskInputs.model_validate(HIGH_RISK), 2, "shop", POLICY).score
    untrusted = Run({"risk": LOW_RISK}, name="t2")
    untrusted.body["metadata"]["annotations"] = {
        RISK_INPUTS_ANNOTATION: json.dumps(HIGH_RISK),
        RISK_DECLARED_BY_ANNOTATION: "dev-publisher",
    }
    await untrusted.until("Succeeded")


def test_the_webhook_stamps_the_risk_declarer_and_refuses_edits_of_controller_owned_fields() -> None:
    new = {"metadata": {"annotations": {RISK_INPUTS_ANNOTATION: "{}", RISK_DECLARED_BY_ANNOTATION: CI}}, "spec": {}}
    out = stamp(Review("DeploymentTask", "CREATE", Requester("dev-publisher"), new), POLICY, T0)
    assert out.annotations[RISK_DECLARED_BY_ANNOTATION] == "dev-publisher"
    forged = {"metadata": {"annotations": {RISK_DECLARED_BY_ANNOTATION: CI}}, "spec": {}}
    out = stamp(Review("DeploymentTask", "UPDATE", Requester("dev-publisher"), forged, {"spec": {}}), POLICY, T0)
    assert out.annotations[RISK_DECLARED_BY_ANNOTATION] == ""
    old = {"spec": {"requiredApprovals": 2, "decisions": []}}
    lowered = {"spec": {"requiredApprovals": 1, "decisions": []}}
    why = refusal(Review("ChangeRequest", "UPDATE", Requester("dev-approver"), lowered, old), POLICY)
    assert why == "spec.requiredApprovals is owned by the controller: only spec.decisions may be changed"
    controller = POLICY.identity.controller or ""
    assert refusal(Review("ChangeRequest", "UPDATE", Requester(controller), lowered, old), POLICY) is None


async def test_an_invalid_spec_ends_the_task_failed_and_a_later_task_of_the_app_is_not_blocked() -> None:
    world = FakeWorld()
    first = Run({"gates": [{"ring": 4}]}, world=world)
    await first.tick()
    assert first.phase == "Failed"
    world.tasks = [first.body]
    second = Run({}, world=world, name="t2")
    await second.until("Succeeded")
    assert second.condition("InvalidSpec") is None or second.condition("InvalidSpec")["status"] == "False"


def test_a_malformed_or_untrusted_risk_annotation_falls_back_to_the_spec() -> None:
    from controller.api.deploymenttask import DeploymentTaskSpec
    from controller.orchestration.declaring import declared_risk

    spec = DeploymentTaskSpec.model_validate({"app": "shop", "version": "1.0.0", "maxRing": 0, "risk": LOW_RISK})
    broken = {RISK_INPUTS_ANNOTATION: "{not json", RISK_DECLARED_BY_ANNOTATION: CI}
    assert declared_risk(spec, broken, POLICY).declared_by == "spec.risk by an unnamed requester"
    trusted = {RISK_INPUTS_ANNOTATION: json.dumps(HIGH_RISK), RISK_DECLARED_BY_ANNOTATION: CI}
    assert declared_risk(spec, trusted, POLICY).declared_by == f"annotation by {CI}"


async def test_an_invalid_edit_of_a_validated_task_keeps_its_phase() -> None:
    run = Run({"maxRing": 1})
    await run.until("Monitoring")
    run.edit(gates=[{"ring": 3}])
    await run.tick()
    assert run.phase == "Monitoring"  # what it deployed stays in force; it waits for a valid spec
    assert run.condition("InvalidSpec")["status"] == "True"
