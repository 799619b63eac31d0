"""What a restarted controller reconciles again: only objects in flight or not reconciled at their generation.

An idle fleet (every Assignment reconciled, tasks finished) costs a restart Kopf's own pass over the objects,
not a reconcile of each one (the restart catch-up of bench/scale.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from controller.reconcile.inflight import wants_resume


def body(generation: int, observed: int | None, phase: str | None = None, deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "x", "generation": generation}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-02T10:00:00Z"
    status: dict[str, Any] = {}
    if observed is not None:
        status["observedGeneration"] = observed
    if phase is not None:
        status["phase"] = phase
    return {"metadata": metadata, "spec": {}, "status": status}


@pytest.mark.parametrize(
    ("kind", "obj", "resumed"),
    [
        ("Assignment", body(3, 3), False),  # reconciled: the drift sweep re-checks it, nothing to resume
        ("Assignment", body(3, 2), True),  # edited while the controller was down
        ("Assignment", body(1, None), True),  # created while it was down
        ("Assignment", body(2, 1, deleting=True), False),  # being deleted: the watch audits it
        ("DeploymentTask", body(1, 1, "Succeeded"), False),
        ("DeploymentTask", body(1, 1, "Monitoring"), True),
        ("DeploymentTask", body(2, 1, "Succeeded"), True),  # a finished task's spec was changed
        ("Remediation", body(1, 1, "Succeeded"), False),
        ("Remediation", body(1, 1, "Remediating"), True),
        ("ChangeRequest", body(1, 1, "Pending"), True),
        ("ChangeRequest", body(1, 1, "Rejected"), False),
    ],
)
def test_a_restart_resumes_only_what_is_in_flight_or_not_reconciled(
    kind: str, obj: dict[str, Any], resumed: bool
) -> None:
    assert wants_resume(kind, obj) is resumed
