"""The first visit every kind's reconcile starts from: observedGeneration, a first condition, InvalidSpec
naming the field (the same admission and conditions each engine's reconcile returns first)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from controller.api.kinds import ASSIGNMENT, CONVERSATION, DEPLOYMENT_TASK, KindInfo
from controller.api.labels import CORRELATION_LABEL
from controller.core.outcome import Outcome
from controller.reconcile.firstvisit import first_visit

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def first_outcome(info: KindInfo, body: dict[str, Any], now: datetime) -> Outcome:
    """The outcome of `first_visit`, which every engine's reconcile returns for a spec it rejects."""
    _, outcome = first_visit(info, body, now)
    return outcome


def task(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "DeploymentTask",
        "metadata": {"name": "t", "namespace": "default", "generation": 3, "labels": {}},
        "spec": {"app": "web", "version": "1.0", "maxRing": 1, **spec},
    }


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_a_valid_object_gets_observed_generation_ready_unknown_and_a_correlation_label() -> None:
    outcome = first_outcome(DEPLOYMENT_TASK, task(correlationId="abc-123"), NOW)
    assert outcome.status["observedGeneration"] == 3
    ready = cond(outcome.status, "Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("Unknown", "Accepted", 3)
    assert outcome.labels == {CORRELATION_LABEL: "abc-123"}
    assert [e.reason for e in outcome.events] == ["Accepted"]
    assert [a.action for a in outcome.audits] == ["Accepted"]


def test_a_generated_correlation_id_is_a_uuid_and_an_existing_label_is_kept() -> None:
    generated = first_outcome(DEPLOYMENT_TASK, task(), NOW).labels[CORRELATION_LABEL]
    assert len(generated) == 36
    body = task()
    body["metadata"]["labels"] = {CORRELATION_LABEL: "keep-me"}
    assert first_outcome(DEPLOYMENT_TASK, body, NOW).labels == {}


def test_a_second_visit_with_nothing_changed_writes_nothing() -> None:
    body = task()
    first = first_outcome(DEPLOYMENT_TASK, body, NOW)
    body["status"] = first.status
    body["metadata"]["labels"] = first.labels
    second = first_outcome(DEPLOYMENT_TASK, body, NOW + timedelta(minutes=5))
    assert second.status == {}
    assert second.events == () and second.audits == ()


def test_a_semantic_error_sets_invalid_spec_naming_the_field_and_nothing_else() -> None:
    outcome = first_outcome(DEPLOYMENT_TASK, task(gates=[{"ring": 4}]), NOW)
    invalid = cond(outcome.status, "InvalidSpec")
    assert invalid["status"] == "True"
    assert invalid["message"] == "spec.gates[0].ring: ring 4 is beyond maxRing 1"
    ready = cond(outcome.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert outcome.events[0].reason == "SpecRejected" and outcome.events[0].type == "Warning"
    assert set(outcome.status) <= {"observedGeneration", "conditions", "phase"}


def test_fixing_the_spec_clears_invalid_spec() -> None:
    body = task(gates=[{"ring": 4}])
    body["status"] = first_outcome(DEPLOYMENT_TASK, body, NOW).status
    body["spec"]["gates"] = []
    body["metadata"]["generation"] = 4
    outcome = first_outcome(DEPLOYMENT_TASK, body, NOW + timedelta(seconds=5))
    assert cond(outcome.status, "InvalidSpec")["status"] == "False"
    assert cond(outcome.status, "Ready")["reason"] == "Accepted"
    assert outcome.status["observedGeneration"] == 4


def test_a_spec_the_models_refuse_is_reported_with_its_path() -> None:
    body = {
        "metadata": {"name": "c", "generation": 1},
        "spec": {"user": "u", "messages": [{"id": "m1", "text": ""}]},
    }
    outcome = first_outcome(CONVERSATION, body, NOW)
    assert cond(outcome.status, "InvalidSpec")["message"].startswith("spec.messages[0].text:")


def test_a_repeated_rejection_does_not_post_the_event_again() -> None:
    body = {
        "metadata": {"name": "a", "generation": 1},
        "spec": {"app": "web", "version": "1", "ring": 0, "target": {"plane": "simulated"}},
    }
    first = first_outcome(ASSIGNMENT, body, NOW)
    body["status"] = first.status
    again = first_outcome(ASSIGNMENT, body, NOW + timedelta(minutes=1))
    assert again.status == {} and again.events == ()
