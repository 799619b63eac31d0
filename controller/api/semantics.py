"""Semantic checks of specs that a structural schema cannot express.

Each check returns `SpecProblem`s naming the field (`spec.gates[1].ring`) and the reason; the
controller turns them into an `InvalidSpec` condition, and the agent runs the same checks
before it proposes a CR, so a user hears the same words either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from controller.api.assignment import AssignmentSpec, DriftType
from controller.api.changerequest import ChangeRequestSpec
from controller.api.conversation import ConversationSpec
from controller.api.deploymenttask import DeploymentTaskSpec, PlaneName
from controller.api.meta import CamelModel
from controller.api.remediation import FixAction, RemediationSpec

#: Which fix fits which drift; anything else is a contradiction.
FIX_FOR_DRIFT: dict[DriftType, FixAction] = {
    DriftType.VERSION_MISMATCH: FixAction.UPDATE,
    DriftType.MISSING_INSTALL: FixAction.INSTALL,
    DriftType.CONFIGURATION_DRIFT: FixAction.REAPPLY_CONFIG,
    DriftType.SERVICE_DOWN: FixAction.RESTART,
}


@dataclass(frozen=True)
class SpecProblem:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def _duplicates(values: list[Any]) -> Iterator[tuple[int, Any]]:
    seen: set[Any] = set()
    for index, value in enumerate(values):
        if value in seen:
            yield index, value
        seen.add(value)


def check_conversation(spec: ConversationSpec) -> list[SpecProblem]:
    return [
        SpecProblem(f"spec.messages[{i}].id", f"duplicate message id {v!r}; ids are never reused")
        for i, v in _duplicates([m.id for m in spec.messages])
    ]


def check_deployment_task(spec: DeploymentTaskSpec) -> list[SpecProblem]:
    problems = [
        SpecProblem(f"spec.gates[{i}].ring", f"ring {v} has more than one gate override")
        for i, v in _duplicates([g.ring for g in spec.gates])
    ]
    for i, gate in enumerate(spec.gates):
        if gate.ring > spec.max_ring:
            problems.append(SpecProblem(f"spec.gates[{i}].ring", f"ring {gate.ring} is beyond maxRing {spec.max_ring}"))
    if spec.monitor.soak_seconds and spec.monitor.soak_seconds < spec.monitor.poll_interval_seconds:
        problems.append(
            SpecProblem(
                "spec.monitor.soakSeconds",
                f"soak of {spec.monitor.soak_seconds}s is shorter than one poll interval "
                f"({spec.monitor.poll_interval_seconds}s)",
            )
        )
    return problems


def check_change_request(spec: ChangeRequestSpec) -> list[SpecProblem]:
    problems = []
    for i, record in enumerate(spec.decisions):
        cond = record.conditions
        if cond is None:
            continue
        if cond.max_ring is not None and cond.max_ring > spec.max_ring:
            problems.append(
                SpecProblem(
                    f"spec.decisions[{i}].conditions.maxRing",
                    f"ring {cond.max_ring} is beyond the plan's maxRing {spec.max_ring}",
                )
            )
        if (
            cond.rollback_below is not None
            and cond.min_success_rate is not None
            and cond.rollback_below > cond.min_success_rate
        ):
            problems.append(
                SpecProblem(
                    f"spec.decisions[{i}].conditions.rollbackBelow",
                    "must not be above minSuccessRate",
                )
            )
    return problems


def check_assignment(spec: AssignmentSpec) -> list[SpecProblem]:
    problems = []
    target = spec.target
    if target.plane is PlaneName.KUBERNETES:
        for field in ("namespace", "name"):
            if getattr(target, field) is None:
                problems.append(SpecProblem(f"spec.target.{field}", "required for the kubernetes plane"))
    elif target.address is None:
        problems.append(SpecProblem("spec.target.address", "required for the simulated plane"))
    problems.extend(
        SpecProblem(f"spec.drift.ignore[{i}]", f"{v} is listed twice") for i, v in _duplicates(list(spec.drift.ignore))
    )
    return problems


def check_remediation(spec: RemediationSpec) -> list[SpecProblem]:
    if spec.action is None or spec.drift_type is None:
        return []
    expected = FIX_FOR_DRIFT.get(spec.drift_type)
    if expected is None:
        return [SpecProblem("spec.action", f"no action fixes {spec.drift_type.value} drift; it escalates")]
    if spec.action is not expected:
        return [
            SpecProblem(
                "spec.action",
                f"{spec.action.value} does not fix {spec.drift_type.value} drift (use {expected.value})",
            )
        ]
    return []


CHECKS: dict[str, Callable[[Any], list[SpecProblem]]] = {
    "Conversation": check_conversation,
    "DeploymentTask": check_deployment_task,
    "ChangeRequest": check_change_request,
    "Assignment": check_assignment,
    "Remediation": check_remediation,
}


def check(kind: str, spec: CamelModel) -> list[SpecProblem]:
    """All semantic problems of a parsed spec of the given kind."""
    return CHECKS[kind](spec)
