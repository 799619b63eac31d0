"""Which objects keep the controller's resync timer: only those with work ahead of them."""

from __future__ import annotations

from typing import Any

import pytest

from controller.reconcile.inflight import in_flight


def body(phase: str | None = None, generation: int = 1, observed: int | None = 1, **extra: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"observedGeneration": observed, **({"phase": phase} if phase else {})}
    status.update(extra.pop("status", {}))
    return {"metadata": {"generation": generation, **extra.pop("metadata", {})}, "status": status, **extra}


@pytest.mark.parametrize(
    ("kind", "phase", "live"),
    [
        ("DeploymentTask", "Deploying", True),
        ("DeploymentTask", "AwaitingApproval", True),
        ("DeploymentTask", "Succeeded", False),
        ("DeploymentTask", "RolledBack", False),
        ("DeploymentTask", "Failed", False),
        ("Remediation", "Verifying", True),
        ("Remediation", "Escalated", False),
        ("ChangeRequest", "Pending", True),
        ("ChangeRequest", "Approved", True),
        ("ChangeRequest", "Rejected", False),
        ("ChangeRequest", "Expired", False),
    ],
)
def test_a_finished_object_has_no_timer_and_a_live_one_has(kind: str, phase: str, live: bool) -> None:
    assert in_flight(kind, body(phase)) is live


def test_an_edit_not_yet_reconciled_is_in_flight_whatever_the_phase() -> None:
    assert in_flight("DeploymentTask", body("Succeeded", generation=2, observed=1))
    assert not in_flight("DeploymentTask", body("Succeeded", metadata={"deletionTimestamp": "2026-12-01T00:00:00Z"}))


def test_assignments_never_have_a_timer_the_drift_sweep_rechecks_them() -> None:
    assert not in_flight("Assignment", body(generation=3, observed=1))


def test_a_conversation_is_in_flight_until_every_message_is_answered() -> None:
    spec = {"messages": [{"id": "m1", "text": "hi"}, {"id": "m2", "text": "deploy web"}]}
    assert in_flight("Conversation", body(spec=spec, status={"answered": 1}))
    assert not in_flight("Conversation", body(spec=spec, status={"answered": 2}))
    pending = {"answered": 2, "pending": {"id": "p1", "tool": "deploy"}}
    assert in_flight("Conversation", body(spec=spec, status=pending))  # a confirmation that may expire
    replying = {"answered": 2, "conditions": [{"type": "Replying", "status": "True"}]}
    assert in_flight("Conversation", body(spec=spec, status=replying))
