"""What the controller writes for an Outcome, and in which order; how our errors become Kopf's; its log.

`apply_outcome` runs against a real `kopf.Patch` and Kopf's own event-posting queue, with the audit
writer replaced by a recorder that notes what the patch held when each row was written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import kopf
import pytest
from kopf._core.engines import posting

from controller.api.kinds import DEPLOYMENT_TASK
from controller.api.labels import CORRELATION_LABEL
from controller.api.policy import load_policy
from controller.core.errors import DEFAULT_RETRY_SECONDS, Unavailable
from controller.core.outcome import AuditNote, EventNote, Outcome
from controller.operator import handlers
from controller.operator.handlers import REQUEUED, RequeueNoise, apply_outcome, with_correlation
from controller.operator.kopferrors import kopf_errors
from controller.reconcile.deps import Deps
from controller.settings import ControllerSettings
from controller.storage.audit import AuditEvent

Journal = list[tuple[str, str, dict[str, Any]]]


def record(message: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)


@pytest.fixture
def root_level() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    previous = root.level
    yield root
    root.setLevel(previous)


def test_a_requeue_is_lowered_to_debug_and_hidden_at_info(root_level: logging.Logger) -> None:
    root_level.setLevel(logging.INFO)
    rec = record(f"Handler 'reconcile' failed temporarily: {REQUEUED}")
    assert RequeueNoise().filter(rec) is False
    assert rec.levelname == "DEBUG"


def test_a_requeue_is_shown_at_debug(root_level: logging.Logger) -> None:
    root_level.setLevel(logging.DEBUG)
    assert RequeueNoise().filter(record(f"failed temporarily: {REQUEUED}")) is True


def test_real_failures_stay_errors() -> None:
    rec = record("Handler 'reconcile' failed temporarily: connection refused")
    assert RequeueNoise().filter(rec) is True
    assert rec.levelno == logging.ERROR


def test_events_name_the_correlation_id_once() -> None:
    assert with_correlation("Deployed ring 0", "c-1") == "Deployed ring 0 [correlation c-1]"
    assert with_correlation("Deployed ring 0 [correlation c-1]", "c-1") == "Deployed ring 0 [correlation c-1]"
    assert with_correlation("Deployed ring 0", "") == "Deployed ring 0"


def test_unavailable_becomes_a_temporary_error_with_its_delay() -> None:
    with pytest.raises(kopf.TemporaryError) as caught, kopf_errors():
        raise Unavailable("PostgreSQL is down", retry_after_seconds=7.5)
    assert caught.value.delay == 7.5
    assert str(caught.value) == "PostgreSQL is down"
    assert isinstance(caught.value.__cause__, Unavailable)


def test_unavailable_without_a_delay_waits_the_default() -> None:
    with pytest.raises(kopf.TemporaryError) as caught, kopf_errors():
        raise Unavailable("Redis is down")
    assert caught.value.delay == DEFAULT_RETRY_SECONDS


def test_other_errors_pass_through_to_kopfs_default_backoff() -> None:
    with pytest.raises(KeyError), kopf_errors():
        raise KeyError("boom")


class RecordingQueue(asyncio.Queue[posting.K8sEvent]):
    """Kopf's event queue, noting in the journal what the patch held when each Event was queued."""

    def __init__(self, journal: Journal, patch: kopf.Patch) -> None:
        super().__init__()
        self.journal, self.patch = journal, patch

    def put_nowait(self, item: posting.K8sEvent) -> None:
        self.journal.append(("event", item.reason, snapshot(self.patch)))
        super().put_nowait(item)


def snapshot(patch: kopf.Patch) -> dict[str, Any]:
    status = dict(patch.get("status") or {})
    return {"status": status, "labels": dict((patch.get("metadata") or {}).get("labels") or {})}


@dataclass
class Applied:
    """What one `apply_outcome` call wrote: the patch, the audit rows, the queued Events, in one journal."""

    patch: kopf.Patch = field(default_factory=kopf.Patch)
    journal: Journal = field(default_factory=list)
    audited: list[AuditEvent] = field(default_factory=list)
    events: list[posting.K8sEvent] = field(default_factory=list)


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> Applied:
    result = Applied()

    async def fake_record_audit(pool: Any, event: AuditEvent) -> None:
        result.audited.append(event)
        result.journal.append(("audit", event.action, snapshot(result.patch)))

    monkeypatch.setattr(handlers, "record_audit", fake_record_audit)
    return result


async def apply(applied: Applied, outcome: Outcome, obj: kopf.Body, pool: Any = "a pool") -> None:
    """Call `apply_outcome` inside Kopf's posting context (settings, queue, loop), as a handler would be."""
    queue = RecordingQueue(applied.journal, applied.patch)
    tokens = (
        posting.settings_var.set(kopf.OperatorSettings()),
        posting.event_queue_var.set(queue),
        posting.event_queue_loop_var.set(asyncio.get_running_loop()),
    )
    deps = Deps(settings=ControllerSettings(), policy=load_policy(), pool=pool)
    try:
        await apply_outcome(DEPLOYMENT_TASK, obj, applied.patch, deps, outcome)
    finally:
        applied.events = [queue.get_nowait() for _ in range(queue.qsize())]
        posting.event_queue_loop_var.reset(tokens[2])
        posting.event_queue_var.reset(tokens[1])
        posting.settings_var.reset(tokens[0])


def body(labels: dict[str, str] | None = None) -> kopf.Body:
    return kopf.Body(
        {
            "apiVersion": "ringpilot.dev/v1alpha1",
            "kind": "DeploymentTask",
            "metadata": {"name": "web-1", "namespace": "default", "uid": "u-1", "labels": labels or {}},
            "spec": {"app": "web", "version": "1.0", "maxRing": 1},
        }
    )


OUTCOME = Outcome(
    status={"phase": "Deploying", "observedGeneration": 2},
    labels={CORRELATION_LABEL: "c-9"},
    events=(EventNote("RingStarted", "Deploying ring 0"), EventNote("GateFailed", "ring 0 below 95 %", "Warning")),
    audits=(AuditNote("Accepted", "system:ringpilot"), AuditNote("RingStarted", "system:ringpilot", "ring 0")),
)


async def test_audit_rows_come_first_then_status_and_labels_then_events(applied: Applied) -> None:
    await apply(applied, OUTCOME, body())
    written = {"status": {"phase": "Deploying", "observedGeneration": 2}, "labels": {CORRELATION_LABEL: "c-9"}}
    assert applied.journal == [
        ("audit", "Accepted", {"status": {}, "labels": {}}),
        ("audit", "RingStarted", {"status": {}, "labels": {}}),
        ("event", "RingStarted", written),
        ("event", "GateFailed", written),
    ]
    assert applied.patch == {"status": written["status"], "metadata": {"labels": written["labels"]}}


async def test_audit_rows_and_events_carry_the_new_correlation_id(applied: Applied) -> None:
    await apply(applied, OUTCOME, body())
    assert [(r.correlation_id, r.kind, r.namespace, r.name, r.reason) for r in applied.audited] == [
        ("c-9", "DeploymentTask", "default", "web-1", ""),
        ("c-9", "DeploymentTask", "default", "web-1", "ring 0"),
    ]
    assert [(e.type, e.reason, e.message) for e in applied.events] == [
        ("Normal", "RingStarted", "Deploying ring 0 [correlation c-9]"),
        ("Warning", "GateFailed", "ring 0 below 95 % [correlation c-9]"),
    ]
    assert {(e.ref["kind"], e.ref["name"], e.ref["uid"]) for e in applied.events} == {
        ("DeploymentTask", "web-1", "u-1")
    }


async def test_an_existing_correlation_label_names_the_events(applied: Applied) -> None:
    outcome = Outcome(status={}, events=(EventNote("Accepted", "DeploymentTask accepted"),))
    await apply(applied, outcome, body({CORRELATION_LABEL: "c-old"}))
    assert [e.message for e in applied.events] == ["DeploymentTask accepted [correlation c-old]"]
    assert applied.patch == {}


async def test_without_a_database_nothing_is_audited_but_status_and_events_are_written(applied: Applied) -> None:
    await apply(applied, OUTCOME, body(), pool=None)
    assert [kind for kind, _, _ in applied.journal] == ["event", "event"]
    assert applied.patch["status"]["phase"] == "Deploying"


async def test_a_requeue_is_raised_after_everything_is_written(applied: Applied) -> None:
    outcome = Outcome(
        status={"phase": "Monitoring"}, events=(EventNote("Soaking", "soak 5 min"),), requeue_after_seconds=3.0
    )
    with pytest.raises(kopf.TemporaryError, match=REQUEUED) as caught:
        await apply(applied, outcome, body())
    assert caught.value.delay == 3.0
    assert applied.patch["status"] == {"phase": "Monitoring"}
    assert [reason for _, reason, _ in applied.journal] == ["Soaking"]
