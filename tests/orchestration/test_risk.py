"""Risk model v1.0 (domain.md §3.1): the worked examples, rounding, CAB rings, blast-radius classes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from controller.api.policy import Policy, load_policy
from controller.api.risk_inputs import (
    DataAccess,
    Exploitability,
    History,
    OperationalComplexity,
    PrivilegeImpact,
    RiskInputs,
    SbomVulnerability,
    SupplyChainTrust,
)
from controller.orchestration import risk
from controller.orchestration.risk import BlastRadiusClass
from tests.orchestration.driver import LOW_RISK

POLICY = load_policy()


def test_worked_example_1_scores_14() -> None:
    """Example 1 of docs/architecture/risk-model.md (Notepad++, a low-risk desktop app).

    Inputs that reproduce it: privilege UserContext (0.2), supply chain SignedKnownProvenance (0.1),
    exploitability None (0.2), data access OwnDirectory (0.1), SBOM NoHighOrCritical (0.0),
    blast radius from maxRing 1 (Canary, 0.3), operational OnlineQuick (0.1), history Clean (0.1):
    4 + 1.5 + 2 + 1 + 0 + 3 + 1 + 1 = 13.5, rounded half up to 14. These are RiskInputs' defaults.
    """
    assessment = risk.assess(RiskInputs.model_validate(LOW_RISK), 1, "notepad", POLICY)
    assert assessment.score == 14
    assert assessment.label == risk.AUTOMATED_ALLOWED
    assert assessment.cab_required is False
    assert assessment.cab_from_ring is None
    assert assessment.model_version == "v1.0"
    contributions = {f.name: f.contribution for f in assessment.factors}
    assert contributions == {
        "privilege_impact": 4.0,
        "supply_chain_trust": 1.5,
        "exploitability": 2.0,
        "data_access": 1.0,
        "sbom_vulnerability": 0.0,
        "blast_radius": 3.0,
        "operational_complexity": 1.0,
        "history": 1.0,
    }
    assert sum(f.weight for f in assessment.factors) == 100


def test_worked_example_2_scores_62_and_needs_cab_before_ring_2() -> None:
    """Example 2 of the same document (an antivirus/EDR agent, privileged tooling).

    Inputs: privilege Kernel (1.0), supply chain SignedKnownProvenance (0.1), exploitability
    PrivilegedListener (1.0), data access WideWithCredentials (1.0), SBOM NoHighOrCritical (0.0),
    blast radius from maxRing 4 (Global, 1.0), operational RebootSequencing (0.7), history
    FewFailures (0.3): 20 + 1.5 + 10 + 10 + 0 + 10 + 7 + 3 = 61.5, rounded half up to 62.
    """
    inputs = RiskInputs(
        privilege_impact=PrivilegeImpact.KERNEL,
        exploitability=Exploitability.PRIVILEGED_LISTENER,
        data_access=DataAccess.WIDE_WITH_CREDENTIALS,
        operational_complexity=OperationalComplexity.REBOOT_SEQUENCING,
        history=History.FEW_FAILURES,
        supply_chain_trust=SupplyChainTrust.SIGNED_KNOWN_PROVENANCE,
        sbom_vulnerability=SbomVulnerability.NO_HIGH_OR_CRITICAL,
        privileged_tooling=True,
    )
    assessment = risk.assess(inputs, 4, "edr-agent", POLICY)
    assert assessment.score == 62
    assert assessment.label == risk.PRIVILEGED_TOOLING
    assert assessment.cab_required is True
    assert assessment.cab_from_ring == 2
    assert assessment.blast_radius_class == BlastRadiusClass.CRITICAL_INFRASTRUCTURE.value
    assert assessment.required_approvals == 3


@pytest.mark.parametrize(("value", "expected"), [("13.5", 14), ("38.5", 39), ("61.5", 62), ("38.4", 38)])
def test_rounding_is_half_up_not_bankers(value: str, expected: int) -> None:
    assert risk.round_half_up(Decimal(value)) == expected
    assert round(38.5) == 38  # what the model must not use


def test_critical_targets_multiply_blast_radius_by_1_2_capped_at_1() -> None:
    assert risk.blast_radius(2, True)[0] == Decimal("0.60")
    assert risk.blast_radius(4, True)[0] == Decimal("1.0")
    assert "critical" in risk.blast_radius(3, True)[1]
    assert risk.blast_radius(0, False)[0] == Decimal("0.1")


def test_scores_are_clamped_and_every_rubric_row_has_a_value() -> None:
    worst = RiskInputs(
        privilege_impact=PrivilegeImpact.KERNEL,
        supply_chain_trust=SupplyChainTrust.UNSIGNED_UNKNOWN_ORIGIN,
        exploitability=Exploitability.PRIVILEGED_LISTENER,
        data_access=DataAccess.WIDE_WITH_CREDENTIALS,
        sbom_vulnerability=SbomVulnerability.CRITICAL,
        operational_complexity=OperationalComplexity.OFFLINE_IMPORT,
        history=History.SECURITY_INCIDENT,
        critical_targets=True,
    )
    assert risk.assess(worst, 4, "x", POLICY).score == 99  # 0.9 supply chain keeps it below 100
    for table in (
        risk.PRIVILEGE,
        risk.SUPPLY_CHAIN,
        risk.EXPLOITABILITY,
        risk.DATA_ACCESS,
        risk.SBOM,
        risk.OPERATIONAL,
        risk.HISTORY,
    ):
        assert all(Decimal(0) <= v <= Decimal(1) for v, _ in table.values())
    assert risk.publish_blocked(worst) is True
    assert risk.publish_blocked(RiskInputs.model_validate(LOW_RISK)) is False


def high_risk() -> RiskInputs:
    """Risk 65 at maxRing 2, not privileged: 14 + 10.5 + 8 + 9 + 10.5 + 5 + 5 + 3."""
    return RiskInputs(
        privilege_impact=PrivilegeImpact.ADMIN_INSTALL,
        supply_chain_trust=SupplyChainTrust.UNSIGNED,
        exploitability=Exploitability.LISTENER_SCRIPTING,
        data_access=DataAccess.CREDENTIAL_STORE,
        sbom_vulnerability=SbomVulnerability.HIGH_MITIGABLE,
        operational_complexity=OperationalComplexity.REBOOT,
        history=History.FEW_FAILURES,
    )


def test_high_risk_needs_cab_from_the_first_ring_whose_policy_threshold_it_exceeds() -> None:
    assessment = risk.assess(high_risk(), 2, "shop", POLICY)
    assert assessment.score == 65
    assert assessment.label == risk.CAB_REQUIRED
    assert assessment.cab_from_ring == 2
    assert assessment.blast_radius_class == BlastRadiusClass.PRODUCTIVITY_TOOLS.value
    assert assessment.required_approvals == 1
    # Ring 0 and 1 are allowed without CAB: a high-risk change limited to Canary needs none.
    assert risk.assess(high_risk(), 1, "shop", POLICY).cab_required is False


def test_privileged_apps_from_the_policy_are_always_gated_from_the_first_cab_ring() -> None:
    policy = POLICY.model_copy(update={"risk": POLICY.risk.model_copy(update={"privileged_apps": ["edr"]})})
    assessment = risk.assess(RiskInputs.model_validate(LOW_RISK), 2, "edr", policy)
    assert assessment.score < 50
    assert assessment.privileged is True
    assert assessment.cab_from_ring == 2
    assert assessment.label == risk.PRIVILEGED_TOOLING


def test_a_policy_without_cab_rings_still_gates_privileged_tooling_from_ring_2() -> None:
    rings = [r.model_copy(update={"cab_required_above_risk": None}) for r in POLICY.rings]
    policy: Policy = POLICY.model_copy(update={"rings": rings})
    privileged = RiskInputs.model_validate({**LOW_RISK, "privilegedTooling": True})
    assert risk.cab_from_ring(10, True, 3, policy) == 2
    assert risk.cab_from_ring(10, True, 1, policy) is None
    assert risk.cab_from_ring(99, False, 4, policy) is None
    assert risk.assess(privileged, 3, "x", policy).cab_required is True


@pytest.mark.parametrize(
    ("inputs", "max_ring", "expected"),
    [
        (RiskInputs.model_validate(LOW_RISK), 0, BlastRadiusClass.NON_CRITICAL),
        (RiskInputs.model_validate(LOW_RISK), 1, BlastRadiusClass.NON_CRITICAL),
        (RiskInputs.model_validate(LOW_RISK), 2, BlastRadiusClass.PRODUCTIVITY_TOOLS),
        (RiskInputs.model_validate(LOW_RISK), 3, BlastRadiusClass.BUSINESS_CRITICAL),
        (RiskInputs.model_validate({**LOW_RISK, "criticalTargets": True}), 1, BlastRadiusClass.BUSINESS_CRITICAL),
        (
            RiskInputs(privilege_impact=PrivilegeImpact.ELEVATED_SERVICE),
            0,
            BlastRadiusClass.CRITICAL_INFRASTRUCTURE,
        ),
    ],
)
def test_blast_radius_classes_and_quorums(inputs: RiskInputs, max_ring: int, expected: BlastRadiusClass) -> None:
    assert risk.classify_blast_radius(inputs, max_ring, privileged=False) is expected
    assert risk.QUORUM[expected] == {"CriticalInfrastructure": 3, "BusinessCritical": 2}.get(expected.value, 1)
