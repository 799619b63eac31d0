"""Who writes an Assignment's first status under the real handlers: the sweep, or Kopf when the sweep cannot.

A rollout writes Assignments by the dozen (perf.md: 5 writes and an Event each). A valid one with its
correlation label is left to the drift sweep, whose first check writes its status once, `observedGeneration`
included; Kopf stores no annotation and no finalizer on it. One without the label, or with a spec that fails
admission, is still Kopf's: it gets the label, or `InvalidSpec` naming the field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controller.api.labels import CORRELATION_LABEL, FINALIZER, KOPF_ANNOTATION_PREFIX
from tests.operator.conftest import LiveOperator, eventually

if TYPE_CHECKING:
    from controller.devkit.emulator import EmulatorServer

GROUP, VERSION, NAMESPACE = "ringpilot.dev", "v1alpha1", "default"


def assignment(name: str, labels: dict[str, str] | None = None, **target: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Assignment",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "app": name,
            "version": "1.0.0",
            "ring": 0,
            "target": target or {"plane": "kubernetes", "namespace": "ring-0-lab", "name": name},
            "drift": {"mode": "Off"},
        },
    }


def writes_to(emulator: EmulatorServer, name: str) -> list[str]:
    """The write calls the emulator served on one Assignment, as `VERB subresource` ("" for the object)."""
    found = []
    for r in list(emulator.requests):
        parts = r.path.rstrip("/").split("/")
        if r.method in ("PATCH", "PUT", "POST") and "assignments" in parts:
            at = parts.index("assignments")
            if len(parts) > at + 1 and parts[at + 1] == name:
                found.append(f"{r.method} {'/'.join(parts[at + 2 :])}")
    return found


async def test_a_rollouts_assignment_gets_its_first_status_from_the_sweep_in_one_write(
    operator: LiveOperator, emulator: EmulatorServer
) -> None:
    operator.custom.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "assignments", assignment("swept", {CORRELATION_LABEL: "c-swept"})
    )

    async def observed() -> dict[str, Any] | None:
        body: dict[str, Any] = operator.custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "assignments", "swept"
        )
        return body if (body.get("status") or {}).get("observedGeneration") == 1 else None

    body = await eventually(observed, "the sweep's first check of the Assignment", 30)
    assert body["status"]["sync"] == "Unknown"  # drift mode Off: not checked, and it says so
    assert writes_to(emulator, "swept") == ["PATCH status"]
    meta = body["metadata"]
    assert FINALIZER not in (meta.get("finalizers") or [])
    assert not [k for k in meta.get("annotations") or {} if k.startswith(f"{KOPF_ANNOTATION_PREFIX}/")]


async def test_an_assignment_without_a_correlation_label_is_reconciled_by_kopf(
    operator: LiveOperator, emulator: EmulatorServer
) -> None:
    operator.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "assignments", assignment("unlabelled"))

    async def labelled() -> dict[str, Any] | None:
        body: dict[str, Any] = operator.custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "assignments", "unlabelled"
        )
        ready = (body.get("status") or {}).get("observedGeneration") == 1
        return body if ready and CORRELATION_LABEL in (body["metadata"].get("labels") or {}) else None

    body = await eventually(labelled, "the correlation label and observedGeneration", 30)
    assert len(body["metadata"]["labels"][CORRELATION_LABEL]) >= 8


async def test_an_assignment_whose_spec_fails_admission_gets_invalid_spec_naming_the_field(
    operator: LiveOperator, emulator: EmulatorServer
) -> None:
    bad = assignment("deviceless", {CORRELATION_LABEL: "c-bad"}, plane="simulated")
    operator.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "assignments", bad)

    async def refused() -> dict[str, Any] | None:
        body: dict[str, Any] = operator.custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "assignments", "deviceless"
        )
        conds = (body.get("status") or {}).get("conditions") or []
        return next((c for c in conds if c["type"] == "InvalidSpec" and c["status"] == "True"), None)

    cond = await eventually(refused, "InvalidSpec on the Assignment", 30)
    assert "spec.target.address" in cond["message"]
