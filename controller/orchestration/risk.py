"""Risk model v1.0 (docs/domain.md §3): eight weighted factors, half-up rounding, CAB thresholds.

Pure: `assess` turns a task's declared `RiskInputs` (an undeclared one scores as `Unknown`, the
riskiest level), its artifact's registry trust, its highest ring and the policy into a
`RiskAssessment` (score, label, every factor with its rationale, the first ring that needs CAB
approval, the blast-radius class and the CAB quorum). The reconcile of a DeploymentTask calls it
at ValidateIntent; the score is never set by anyone else (no "AI-driven deployments").
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from controller.api.deploymenttask import RiskAssessment, RiskFactor
from controller.api.policy import Policy
from controller.api.registries import MUTABLE_TAGS
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

MODEL_VERSION = "v1.0"

AUTOMATED_ALLOWED = "AUTOMATED_ALLOWED"
CAB_REQUIRED = "CAB_REQUIRED"
PRIVILEGED_TOOLING = "PRIVILEGED_TOOLING"

#: Ring CAB starts at for privileged tooling when the policy names no CAB ring at all (docs: Ring 2).
DEFAULT_CAB_RING = 2

D = Decimal

#: (normalized value, rationale) per rubric row, exactly as docs/domain.md §3 lists them.
PRIVILEGE: dict[PrivilegeImpact, tuple[Decimal, str]] = {
    PrivilegeImpact.USER_CONTEXT: (D("0.2"), "User-context install, no elevation"),
    PrivilegeImpact.OPTIONAL_ADMIN: (D("0.5"), "User-context with optional admin features"),
    PrivilegeImpact.ADMIN_INSTALL: (D("0.7"), "Admin required for install, runs as user"),
    PrivilegeImpact.ELEVATED_SERVICE: (D("1.0"), "Admin/service install, runs elevated"),
    PrivilegeImpact.KERNEL: (D("1.0"), "Driver, kernel or system extension"),
}
SUPPLY_CHAIN: dict[SupplyChainTrust, tuple[Decimal, str]] = {
    SupplyChainTrust.SIGNED_KNOWN_PROVENANCE: (D("0.1"), "Signed, known vendor, consistent provenance"),
    SupplyChainTrust.SIGNED_KNOWN: (D("0.3"), "Signed, known vendor, weak provenance"),
    SupplyChainTrust.SIGNED_UNKNOWN_VENDOR: (D("0.4"), "Signed but unknown or unverified vendor"),
    SupplyChainTrust.UNSIGNED: (D("0.7"), "Unsigned or self-signed"),
    SupplyChainTrust.UNSIGNED_UNKNOWN_ORIGIN: (D("0.9"), "Unsigned, uncertain provenance"),
}
EXPLOITABILITY: dict[Exploitability, tuple[Decimal, str]] = {
    Exploitability.NONE: (D("0.2"), "No listeners, no macro or scripting capability"),
    Exploitability.LISTENER: (D("0.5"), "User-space listener"),
    Exploitability.SCRIPTING: (D("0.6"), "Embedded scripting or macros"),
    Exploitability.LISTENER_SCRIPTING: (D("0.8"), "User-space listener and scripting"),
    Exploitability.PRIVILEGED_LISTENER: (D("1.0"), "Privileged listener or elevated service"),
}
DATA_ACCESS: dict[DataAccess, tuple[Decimal, str]] = {
    DataAccess.OWN_DIRECTORY: (D("0.1"), "Scoped to its own data directory"),
    DataAccess.DOCUMENTS_READ: (D("0.4"), "Reads the user's documents"),
    DataAccess.PROFILE_READ_WRITE: (D("0.6"), "Reads and writes the user profile"),
    DataAccess.CREDENTIAL_STORE: (D("0.9"), "Accesses a credential store"),
    DataAccess.WIDE_WITH_CREDENTIALS: (D("1.0"), "Wide filesystem access and a credential store"),
}
SBOM: dict[SbomVulnerability, tuple[Decimal, str]] = {
    SbomVulnerability.NO_HIGH_OR_CRITICAL: (D("0.0"), "No High or Critical findings"),
    SbomVulnerability.LOW_MEDIUM_ONLY: (D("0.3"), "Low or Medium findings only"),
    SbomVulnerability.HIGH_MITIGABLE: (D("0.7"), "High findings, compensating controls possible"),
    SbomVulnerability.CRITICAL_WITH_CONTROLS: (D("0.9"), "Critical findings with compensating controls"),
    SbomVulnerability.CRITICAL: (
        D("1.0"),
        "Critical findings without compensating controls: publish blocked",
    ),
}
#: Blast radius by the highest ring in scope (ring sizes: docs/domain.md §1).
BLAST_RADIUS: tuple[tuple[Decimal, str], ...] = (
    (D("0.1"), "Ring 0 (Lab), under 10 targets"),
    (D("0.3"), "Ring 1 (Canary), under 100 targets"),
    (D("0.5"), "Ring 2 (Pilot), under 1,000 targets"),
    (D("0.7"), "Ring 3 (Department), 1,000-10,000 targets"),
    (D("1.0"), "Ring 4 (Global), over 10,000 targets"),
)
CRITICAL_MULTIPLIER = D("1.2")
OPERATIONAL: dict[OperationalComplexity, tuple[Decimal, str]] = {
    OperationalComplexity.ONLINE_QUICK: (D("0.1"), "Online, no reboot, under 5 minutes"),
    OperationalComplexity.MINUTES: (D("0.3"), "Online, no reboot, 5-15 minutes"),
    OperationalComplexity.REBOOT: (D("0.5"), "Requires a reboot"),
    OperationalComplexity.REBOOT_SEQUENCING: (D("0.7"), "Reboot and special sequencing"),
    OperationalComplexity.OFFLINE_IMPORT: (D("1.0"), "Offline import, reboot and sequencing"),
}
HISTORY: dict[History, tuple[Decimal, str]] = {
    History.CLEAN: (D("0.1"), "No prior incidents, success over 99%"),
    History.FEW_FAILURES: (D("0.3"), "Minor incidents, under 5% failures"),
    History.SOME_FAILURES: (D("0.6"), "Moderate incidents, 5-10% failures"),
    History.MANY_FAILURES: (D("0.9"), "Major incidents, over 10% failures, hard rollback"),
    History.SECURITY_INCIDENT: (D("1.0"), "Prior security incident or breach"),
}
WEIGHTS: dict[str, int] = {
    "privilege_impact": 20,
    "supply_chain_trust": 15,
    "exploitability": 10,
    "data_access": 10,
    "sbom_vulnerability": 15,
    "blast_radius": 10,
    "operational_complexity": 10,
    "history": 10,
}


class BlastRadiusClass(StrEnum):
    """Blast-radius classes of docs/domain.md §3; each sets a CAB quorum."""

    CRITICAL_INFRASTRUCTURE = "CriticalInfrastructure"
    BUSINESS_CRITICAL = "BusinessCritical"
    PRODUCTIVITY_TOOLS = "ProductivityTools"
    NON_CRITICAL = "NonCritical"


QUORUM: dict[BlastRadiusClass, int] = {
    BlastRadiusClass.CRITICAL_INFRASTRUCTURE: 3,
    BlastRadiusClass.BUSINESS_CRITICAL: 2,
    BlastRadiusClass.PRODUCTIVITY_TOOLS: 1,
    BlastRadiusClass.NON_CRITICAL: 1,
}


def round_half_up(value: Decimal) -> int:
    """13.5 -> 14, 61.5 -> 62 (Python's round() would give 14 and 62 but 38.5 -> 38)."""
    return int(value.quantize(D("1"), rounding=ROUND_HALF_UP))


#: The explicit Unknown level of an undeclared input: it scores as high as the riskiest row (§3.1).
UNKNOWN = (D("1.0"), "Unknown: not declared, scored as the riskiest level")


def _row(table: dict[Any, tuple[Decimal, str]], value: Any) -> tuple[Decimal, str]:
    return UNKNOWN if value is None else table[value]


def supply_chain(inputs: RiskInputs, artifact: str | None, policy: Policy) -> tuple[Decimal, str]:
    """The declared supply-chain trust, or the allow-listed registry's, whichever is riskier (None: Unknown)."""
    declared = inputs.supply_chain_trust
    registry = policy.risk.registry_for(artifact) if artifact else None
    if registry is None:
        return _row(SUPPLY_CHAIN, declared)
    value, why = SUPPLY_CHAIN[registry.trust]
    why = f"{why} (registry {registry.repository} is trusted as {registry.trust.value})"
    if declared is not None and SUPPLY_CHAIN[declared][0] > value:
        return SUPPLY_CHAIN[declared]
    return value, why


def is_privileged(inputs: RiskInputs, app: str, policy: Policy) -> bool:
    """Privileged tooling: declared in the spec, or the app is listed in policy.risk.privilegedApps."""
    return inputs.privileged_tooling or app in policy.risk.privileged_apps


def blast_radius(max_ring: int, critical_targets: bool) -> tuple[Decimal, str]:
    value, why = BLAST_RADIUS[max_ring]
    if critical_targets:
        value = min(D("1.0"), value * CRITICAL_MULTIPLIER)
        why += "; critical targets x1.2, capped at 1.0"
    return value, why


def classify_blast_radius(inputs: RiskInputs, max_ring: int, privileged: bool) -> BlastRadiusClass:
    """Deterministic blast-radius class from privilege and reach (documented in docs of `QUORUM`).

    - privileged tooling, or software that runs elevated or in the kernel: CriticalInfrastructure;
    - critical targets, or a reach of Department/Global (ring 3+, 1,000+ users): BusinessCritical;
    - a reach of Pilot (ring 2, 100+ users): ProductivityTools;
    - Lab/Canary only: NonCritical.
    """
    elevated = (None, PrivilegeImpact.ELEVATED_SERVICE, PrivilegeImpact.KERNEL)  # unknown counts as elevated
    if privileged or inputs.privilege_impact in elevated:
        return BlastRadiusClass.CRITICAL_INFRASTRUCTURE
    if inputs.critical_targets or max_ring >= 3:
        return BlastRadiusClass.BUSINESS_CRITICAL
    if max_ring == 2:
        return BlastRadiusClass.PRODUCTIVITY_TOOLS
    return BlastRadiusClass.NON_CRITICAL


def cab_from_ring(score: int, privileged: bool, max_ring: int, policy: Policy) -> int | None:
    """The first ring in 0..max_ring whose entry needs CAB approval, or None.

    Ring r needs CAB when the policy sets `cabRequiredAboveRisk` for it and the score is above that,
    or when the app is privileged tooling and the policy requires CAB for ring r at any risk. If the
    policy names no CAB ring at all, privileged tooling is still gated from ring 2 (docs default).
    """
    gated = [r.ring for r in policy.rings if r.cab_required_above_risk is not None]
    for ring in range(max_ring + 1):
        threshold = policy.ring(ring).cab_required_above_risk
        if threshold is not None and (score > threshold or privileged):
            return ring
    if privileged and not gated and max_ring >= DEFAULT_CAB_RING:
        return DEFAULT_CAB_RING
    return None


@dataclass(frozen=True)
class Factor:
    name: str
    normalized: Decimal
    rationale: str

    @property
    def weight(self) -> int:
        return WEIGHTS[self.name]

    @property
    def contribution(self) -> Decimal:
        return self.normalized * self.weight


def factors(inputs: RiskInputs, max_ring: int, supply: tuple[Decimal, str] | None = None) -> list[Factor]:
    """The eight factors of model v1.0 for these inputs, in the model's order (undeclared: Unknown)."""
    radius = blast_radius(max_ring, inputs.critical_targets)
    rows = [
        ("privilege_impact", _row(PRIVILEGE, inputs.privilege_impact)),
        ("supply_chain_trust", supply or _row(SUPPLY_CHAIN, inputs.supply_chain_trust)),
        ("exploitability", _row(EXPLOITABILITY, inputs.exploitability)),
        ("data_access", _row(DATA_ACCESS, inputs.data_access)),
        ("sbom_vulnerability", _row(SBOM, inputs.sbom_vulnerability)),
        ("blast_radius", radius),
        ("operational_complexity", _row(OPERATIONAL, inputs.operational_complexity)),
        ("history", _row(HISTORY, inputs.history)),
    ]
    return [Factor(name, value, why) for name, (value, why) in rows]


def score(found: list[Factor]) -> int:
    """clamp(0..100, sum of weight x normalized), rounded half up."""
    total = sum((f.contribution for f in found), D(0))
    return max(0, min(100, round_half_up(total)))


def assess(inputs: RiskInputs, max_ring: int, app: str, policy: Policy, artifact: str | None = None) -> RiskAssessment:
    """The full assessment the task records in status.risk and the evidence pack."""
    found = factors(inputs, max_ring, supply_chain(inputs, artifact, policy))
    value = score(found)
    privileged = is_privileged(inputs, app, policy)
    label = (
        PRIVILEGED_TOOLING
        if privileged
        else (CAB_REQUIRED if value > policy.risk.auto_approve_max_score else AUTOMATED_ALLOWED)
    )
    first = cab_from_ring(value, privileged, max_ring, policy)
    klass = classify_blast_radius(inputs, max_ring, privileged)
    return RiskAssessment(
        score=value,
        model_version=MODEL_VERSION,
        label=label,
        cab_required=first is not None,
        cab_from_ring=first,
        blast_radius_class=klass.value,
        required_approvals=QUORUM[klass],
        privileged=privileged,
        factors=[
            RiskFactor(
                name=f.name,
                weight=f.weight,
                normalized=float(f.normalized),
                contribution=float(f.contribution),
                rationale=f.rationale,
            )
            for f in found
        ],
    )


def publish_blocked(inputs: RiskInputs) -> bool:
    """Critical findings without compensating controls block publishing (docs/domain.md §3)."""
    return inputs.sbom_vulnerability is SbomVulnerability.CRITICAL


def problems(version: str, artifact: str | None, policy: Policy) -> list[tuple[str, str]]:
    """(reason, message naming the field) for a mutable tag or an artifact outside the registry allow-list."""
    found = []
    if version.lower() in MUTABLE_TAGS:
        found.append(
            (
                "MutableTag",
                f"spec.version: {version!r} is a mutable tag and names no fixed content; ship an immutable version",
            )
        )
    if artifact is not None and policy.risk.registries is not None and policy.risk.registry_for(artifact) is None:
        allowed = ", ".join(r.repository for r in policy.risk.registries) or "none"
        found.append(
            (
                "RegistryNotAllowed",
                f"spec.artifact: {artifact} is not from an allowed registry (policy risk.registries: {allowed})",
            )
        )
    return found


def declarations(inputs: RiskInputs, declared_by: str, artifact: str | None, policy: Policy) -> dict[str, str]:
    """Who declared each risk input, for the evidence pack (undeclared ones scored Unknown)."""
    out: dict[str, str] = {}
    for name, value in inputs.model_dump(mode="json", by_alias=True).items():
        out[name] = declared_by if value is not None else "undeclared (scored Unknown)"
    registry = policy.risk.registry_for(artifact) if artifact else None
    if registry is not None:
        out["supplyChainTrust"] += f"; registry {registry.repository} trusted as {registry.trust.value} by the policy"
    return out
