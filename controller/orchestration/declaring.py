"""Where a task's risk inputs come from, and who declared them (docs/domain.md §3.2).

Pure. The inputs are the task's `spec.risk`, declared by its requester, unless the task carries the
risk annotation written by a principal the policy trusts (`risk.trustedDeclarers`, e.g. the CI's
identity): the admission webhook records who wrote that annotation, and then those inputs win. The
evidence pack records who declared each input; an undeclared one scores as Unknown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from controller.api.deploymenttask import DeploymentTaskSpec
from controller.api.labels import RISK_DECLARED_BY_ANNOTATION, RISK_INPUTS_ANNOTATION
from controller.api.policy import Policy
from controller.api.risk_inputs import RiskInputs


@dataclass(frozen=True)
class DeclaredRisk:
    """The risk inputs that count, and who declared them (e.g. `spec.risk by dev-publisher`)."""

    inputs: RiskInputs
    declared_by: str


def declared_risk(spec: DeploymentTaskSpec, annotations: Mapping[str, str], policy: Policy) -> DeclaredRisk:
    """The inputs from a trusted principal's annotation, else from `spec.risk`."""
    raw = annotations.get(RISK_INPUTS_ANNOTATION)
    writer = annotations.get(RISK_DECLARED_BY_ANNOTATION, "")
    if raw and writer and writer in policy.risk.trusted_declarers:
        try:
            return DeclaredRisk(RiskInputs.model_validate(json.loads(raw)), f"annotation by {writer}")
        except (ValueError, ValidationError):
            pass
    return DeclaredRisk(spec.risk, spec_declarer(spec))


def spec_declarer(spec: DeploymentTaskSpec) -> str:
    """Who declared `spec.risk`: the task's requester."""
    return f"spec.risk by {spec.requested_by or 'an unnamed requester'}"
