"""Admission as every kind's reconcile starts it: observedGeneration, correlation ID, InvalidSpec naming the field.

DeploymentTasks go through the registered `reconcile_deployment_task` (with no orchestration runtime, the
state a controller without credentials is in); the other kinds through `controller.reconcile.admission`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from controller.api.kinds import ASSIGNMENT, CONVERSATION, DEPLOYMENT_TASK
from controller.api.labels import CORRELATION_LABEL, OBJECT_APP_LABEL
from controller.api.policy import load_policy
from controller.core.outcome import Admitted, Outcome
from controller.reconcile.admission import admit, rejected
from controller.reconcile.deploymenttasks import reconcile_deployment_task
from controller.reconcile.deps import Deps
from controller.settings import ControllerSettings

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def task(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "DeploymentTask",
        "metadata": {"name": "t", "namespace": "default", "generation": 3, "labels": {}},
        "spec": {"app": "web", "version": "1.0", "maxRing": 1, **spec},
    }


async def reconcile(body: dict[str, Any], now: datetime = NOW) -> Outcome:
    deps = Deps(settings=ControllerSettings(), policy=load_policy())
    return await reconcile_deployment_task(DEPLOYMENT_TASK, body, deps, now)


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


async def test_a_valid_task_gets_observed_generation_its_correlation_label_and_one_accepted_event() -> None:
    outcome = await reconcile(task(correlationId="abc-123"))
    assert outcome.status["observedGeneration"] == 3
    ready = cond(outcome.status, "Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("Unknown", "NotOrchestrated", 3)
    assert "InvalidSpec" not in {c["type"] for c in outcome.status["conditions"]}
    assert outcome.labels == {CORRELATION_LABEL: "abc-123", OBJECT_APP_LABEL: "web"}
    assert [e.reason for e in outcome.events] == ["Accepted"]
    assert "[correlation abc-123]" in outcome.events[0].message
    assert [a.action for a in outcome.audits] == ["Accepted"]


async def test_a_generated_correlation_id_is_a_uuid_and_an_existing_label_is_kept() -> None:
    generated = (await reconcile(task())).labels[CORRELATION_LABEL]
    assert len(generated) == 36 and generated.count("-") == 4
    body = task()
    body["metadata"]["labels"] = {CORRELATION_LABEL: "keep-me", OBJECT_APP_LABEL: "web"}
    assert (await reconcile(body)).labels == {}


async def test_a_second_visit_with_nothing_changed_writes_nothing() -> None:
    body = task()
    first = await reconcile(body)
    body["status"] = first.status
    body["metadata"]["labels"] = first.labels
    second = await reconcile(body, NOW + timedelta(minutes=5))
    assert second.status == {}
    assert second.labels == {}
    assert second.events == () and second.audits == ()


async def test_a_semantic_error_sets_invalid_spec_naming_the_field_and_nothing_else() -> None:
    outcome = await reconcile(task(gates=[{"ring": 4}]))
    invalid = cond(outcome.status, "InvalidSpec")
    assert invalid["status"] == "True"
    assert invalid["message"] == "spec.gates[0].ring: ring 4 is beyond maxRing 1"
    ready = cond(outcome.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert [(e.reason, e.type) for e in outcome.events] == [("SpecRejected", "Warning")]
    assert "spec.gates[0].ring" in outcome.events[0].message
    assert [a.action for a in outcome.audits] == ["SpecRejected"]
    assert set(outcome.status) <= {"observedGeneration", "conditions", "phase", "validatedGeneration", "finishedAt"}
    assert outcome.status["phase"] == "Failed"  # an end state: it blocks no later task of the app
    assert outcome.requeue_after_seconds is None


async def test_fixing_the_spec_clears_invalid_spec() -> None:
    body = task(gates=[{"ring": 4}])
    body["status"] = (await reconcile(body)).status
    body["spec"]["gates"] = []
    body["metadata"]["generation"] = 4
    outcome = await reconcile(body, NOW + timedelta(seconds=5))
    assert cond(outcome.status, "InvalidSpec")["status"] == "False"
    assert cond(outcome.status, "Ready")["reason"] != "InvalidSpec"
    assert outcome.status["observedGeneration"] == 4


def test_a_spec_the_models_refuse_is_reported_with_its_path() -> None:
    body = {
        "metadata": {"name": "c", "generation": 1},
        "spec": {"user": "u", "messages": [{"id": "m1", "text": ""}]},
    }
    problems = admit(CONVERSATION, body)
    assert not isinstance(problems, Admitted)
    outcome = rejected(CONVERSATION, body, problems, NOW)
    assert cond(outcome.status, "InvalidSpec")["message"].startswith("spec.messages[0].text:")


def test_a_repeated_rejection_does_not_post_the_event_again() -> None:
    body: dict[str, Any] = {
        "metadata": {"name": "a", "generation": 1},
        "spec": {"app": "web", "version": "1", "ring": 0, "target": {"plane": "simulated"}},
    }
    problems = admit(ASSIGNMENT, body)
    assert not isinstance(problems, Admitted)
    first = rejected(ASSIGNMENT, body, problems, NOW)
    assert [e.reason for e in first.events] == ["SpecRejected"]
    body["status"] = first.status
    again = rejected(ASSIGNMENT, body, problems, NOW + timedelta(minutes=1))
    assert again.status == {} and again.events == () and again.audits == ()
