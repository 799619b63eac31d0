"""Semantic checks name the field and the reason, for every kind."""

from __future__ import annotations

import pytest

from controller.api.assignment import AssignmentSpec
from controller.api.changerequest import ChangeRequestSpec
from controller.api.conversation import ConversationSpec
from controller.api.deploymenttask import DeploymentTaskSpec
from controller.api.remediation import RemediationSpec
from controller.api.semantics import check

DIGEST = "a" * 64


def fields(kind: str, spec: object) -> list[str]:
    return [p.field for p in check(kind, spec)]  # type: ignore[arg-type]


def test_a_reused_message_id_is_named() -> None:
    spec = ConversationSpec(user="u", messages=[{"id": "m1", "text": "a"}, {"id": "m1", "text": "b"}])
    problems = check("Conversation", spec)
    assert [str(p) for p in problems] == ["spec.messages[1].id: duplicate message id 'm1'; ids are never reused"]


def test_gate_overrides_beyond_max_ring_or_twice_for_a_ring_are_named() -> None:
    spec = DeploymentTaskSpec(app="web", version="1.0", max_ring=1, gates=[{"ring": 1}, {"ring": 1}, {"ring": 3}])
    assert fields("DeploymentTask", spec) == ["spec.gates[1].ring", "spec.gates[2].ring"]


def test_soak_shorter_than_a_poll_interval_is_refused() -> None:
    monitor = {"pollIntervalSeconds": 60, "soakSeconds": 5}
    spec = DeploymentTaskSpec(app="web", version="1.0", max_ring=1, monitor=monitor)
    assert fields("DeploymentTask", spec) == ["spec.monitor.soakSeconds"]


def test_a_valid_task_has_no_problems() -> None:
    spec = DeploymentTaskSpec(app="web", version="1.0", max_ring=2, gates=[{"ring": 2, "successThreshold": 0.99}])
    assert check("DeploymentTask", spec) == []


def test_approval_conditions_beyond_the_plan_are_named() -> None:
    spec = ChangeRequestSpec(
        task="t",
        app="web",
        version="1.0",
        max_ring=2,
        risk_score=60,
        plan_digest=DIGEST,
        submitted_by="p",
        decisions=[
            {"approver": "a", "decision": "Approve", "conditions": {"maxRing": 3}},
            {"approver": "b", "decision": "Approve", "conditions": {"minSuccessRate": 0.9, "rollbackBelow": 0.95}},
            {"approver": "c", "decision": "Reject"},
        ],
    )
    assert fields("ChangeRequest", spec) == [
        "spec.decisions[0].conditions.maxRing",
        "spec.decisions[1].conditions.rollbackBelow",
    ]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ({"plane": "kubernetes"}, ["spec.target.namespace", "spec.target.name"]),
        ({"plane": "kubernetes", "namespace": "ns", "name": "web"}, []),
        ({"plane": "simulated"}, ["spec.target.address"]),
        ({"plane": "simulated", "address": "dev-1"}, []),
    ],
)
def test_assignment_targets_need_what_their_plane_needs(target: dict[str, str], expected: list[str]) -> None:
    spec = AssignmentSpec(app="web", version="1", ring=0, target=target)
    assert fields("Assignment", spec) == expected


def test_an_ignored_drift_type_listed_twice_is_named() -> None:
    spec = AssignmentSpec(
        app="web",
        version="1",
        ring=0,
        target={"plane": "simulated", "address": "d"},
        drift={"ignore": ["ServiceDown", "ServiceDown"]},
    )
    assert fields("Assignment", spec) == ["spec.drift.ignore[1]"]


@pytest.mark.parametrize(
    ("drift", "action", "problem"),
    [
        ("VersionMismatch", "Update", None),
        ("MissingInstall", "Restart", "Restart does not fix MissingInstall drift (use Install)"),
        ("Unknown", "Restart", "no action fixes Unknown drift; it escalates"),
        (None, "Restart", None),
    ],
)
def test_remediation_action_must_fit_the_drift(drift: str | None, action: str, problem: str | None) -> None:
    spec = RemediationSpec(assignment="a", drift_type=drift, action=action)
    problems = check("Remediation", spec)
    assert [p.reason for p in problems] == ([problem] if problem else [])
