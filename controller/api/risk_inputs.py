"""The inputs of the deterministic risk model v1.0 (docs/domain.md §3), as a DeploymentTask declares them.

Each factor is an enum of the rubric's rows; the model maps each row to its normalized value, and an
input left out (None) to the explicit `Unknown` level, which scores as the riskiest row.
Blast radius is derived from the task's rings, so it is not an input here except for the
"critical targets" multiplier.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from controller.api.meta import CamelModel


class PrivilegeImpact(StrEnum):
    USER_CONTEXT = "UserContext"
    OPTIONAL_ADMIN = "OptionalAdmin"
    ADMIN_INSTALL = "AdminInstall"
    ELEVATED_SERVICE = "ElevatedService"
    KERNEL = "Kernel"


class SupplyChainTrust(StrEnum):
    SIGNED_KNOWN_PROVENANCE = "SignedKnownProvenance"
    SIGNED_KNOWN = "SignedKnown"
    SIGNED_UNKNOWN_VENDOR = "SignedUnknownVendor"
    UNSIGNED = "Unsigned"
    UNSIGNED_UNKNOWN_ORIGIN = "UnsignedUnknownOrigin"


class Exploitability(StrEnum):
    NONE = "None"
    LISTENER = "Listener"
    SCRIPTING = "Scripting"
    LISTENER_SCRIPTING = "ListenerScripting"
    PRIVILEGED_LISTENER = "PrivilegedListener"


class DataAccess(StrEnum):
    OWN_DIRECTORY = "OwnDirectory"
    DOCUMENTS_READ = "DocumentsRead"
    PROFILE_READ_WRITE = "ProfileReadWrite"
    CREDENTIAL_STORE = "CredentialStore"
    WIDE_WITH_CREDENTIALS = "WideWithCredentials"


class SbomVulnerability(StrEnum):
    NO_HIGH_OR_CRITICAL = "NoHighOrCritical"
    LOW_MEDIUM_ONLY = "LowMediumOnly"
    HIGH_MITIGABLE = "HighMitigable"
    CRITICAL_WITH_CONTROLS = "CriticalWithControls"
    CRITICAL = "Critical"


class OperationalComplexity(StrEnum):
    ONLINE_QUICK = "OnlineQuick"
    MINUTES = "Minutes"
    REBOOT = "Reboot"
    REBOOT_SEQUENCING = "RebootSequencing"
    OFFLINE_IMPORT = "OfflineImport"


class History(StrEnum):
    CLEAN = "Clean"
    FEW_FAILURES = "FewFailures"
    SOME_FAILURES = "SomeFailures"
    MANY_FAILURES = "ManyFailures"
    SECURITY_INCIDENT = "SecurityIncident"


class RiskInputs(CamelModel):
    """What the requester declares about the change; the controller computes the score.

    An input left out is undeclared and scores as Unknown, at least as high as its riskiest row.
    """

    privilege_impact: PrivilegeImpact | None = Field(
        None, description="How much privilege the software needs or grants."
    )
    supply_chain_trust: SupplyChainTrust | None = Field(None, description="Signing and provenance of the artifact.")
    exploitability: Exploitability | None = Field(
        None, description="Listeners and scripting surface the software adds."
    )
    data_access: DataAccess | None = Field(None, description="What data the software can reach.")
    sbom_vulnerability: SbomVulnerability | None = Field(None, description="Worst known vulnerability in the SBOM.")
    operational_complexity: OperationalComplexity | None = Field(
        None, description="Install effort: restarts, sequencing, offline steps."
    )
    history: History | None = Field(None, description="Past deployment outcomes of this app.")
    critical_targets: bool = Field(
        False, description="Targets are critical (servers, identity, executives): blast radius x1.2, capped."
    )
    privileged_tooling: bool = Field(
        False, description="Security or privilege tooling (AV, EDR, PAM): always needs CAB approval."
    )
