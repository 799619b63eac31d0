"""One trace per intent: the reconcile that enqueued a step, the worker's step and its plane call.

The reconcile scope, the dispatcher, dramatiq (a stub broker with our `TraceContext` and `AsyncIO`
middleware and a real worker) and a traced plane run in this process, with an in-memory span exporter.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
from collections.abc import Iterator
from typing import Any, cast

import dramatiq
import pytest
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import REGISTRY

from controller.messaging.dispatching import Dispatcher
from controller.messaging.propagation import TraceContext
from controller.planes.base import PLANE_ACTIONS, PLANE_READS, ExecutionPlane
from controller.storage.audit import AuditEvent, audit_trail, record_audit
from controller.storage.db import Pool
from controller.telemetry.logformat import build_handler
from controller.telemetry.scopes import reconcile_scope
from controller.telemetry.tracing import (
    CORRELATION_ATTRIBUTE,
    current_trace_id,
    instrument_libraries,
    recording_sampler,
    span,
)
from controller.worker.resources import traced_plane

KEY = "sk-ant-api03-PLANTEDstepKEY0123456789abcdef"
logger = logging.getLogger("tests.telemetry.step")


class Plane:
    async def health(self, app: str, ring: int) -> str:
        return f"{app} ring {ring} healthy"

    async def apply_ring(self, app: str, ring: int) -> str:
        return f"{app} ring {ring} updated"

    async def apply(self, app: str) -> str:
        raise PermissionError(f"plane refused the token {KEY}")


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    broker = StubBroker(middleware=[TraceContext(), AsyncIO()])
    broker.declare_queue("steps")
    plane: Any = traced_plane(cast(ExecutionPlane, Plane()), "simulated")  # as the worker wraps its planes

    async def poll(app: str, ring: int, correlation_id: str) -> None:
        logger.info("Polled: %s", await plane.health(app, ring))

    async def deploy(app: str, ring: int, correlation_id: str) -> None:
        logger.info("Deployed: %s", await plane.apply_ring(app, ring))

    async def fail(app: str, correlation_id: str) -> None:
        await plane.apply(app)

    dramatiq.actor(poll, broker=broker, actor_name="test_poll_ring", queue_name="steps")
    dramatiq.actor(deploy, broker=broker, actor_name="test_deploy_ring", queue_name="steps")
    dramatiq.actor(fail, broker=broker, actor_name="test_deploy_target", queue_name="steps")
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        yield broker
    finally:
        worker.stop()
        broker.close()


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = build_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def by_name(spans: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans.get_finished_spans()}


def test_the_reconcile_its_step_and_the_plane_call_are_one_trace_with_one_correlation_id(
    broker: StubBroker, spans: InMemorySpanExporter, log_text: io.StringIO
) -> None:
    with reconcile_scope("DeploymentTask", "default", "t1", "corr-rollout"):
        Dispatcher(broker).enqueue(
            "test_deploy_ring",
            "steps",
            key="corr-rollout/deploy/a1",
            correlation_id="corr-rollout",
            kwargs={"app": "web", "ring": 0},
        )
    broker.join("steps", fail_fast=True)
    found = by_name(spans)
    reconcile, step, call = (
        found["reconcile DeploymentTask"],
        found["step test_deploy_ring"],
        found["plane simulated.apply_ring"],
    )
    assert {s.context.trace_id for s in (reconcile, step, call)} == {reconcile.context.trace_id}
    assert step.parent is not None and step.parent.span_id == reconcile.context.span_id
    assert call.parent is not None and call.parent.span_id == step.context.span_id
    assert {s.attributes[CORRELATION_ATTRIBUTE] for s in (reconcile, step, call)} == {"corr-rollout"}

    lines = [json.loads(line) for line in log_text.getvalue().splitlines()]
    enqueued = next(line for line in lines if str(line["message"]).startswith("Enqueued test_deploy_ring"))
    deployed = next(line for line in lines if line["message"] == "Deployed: web ring 0 updated")
    assert enqueued["correlation_id"] == deployed["correlation_id"] == "corr-rollout"
    assert enqueued["trace_id"] == deployed["trace_id"] == format(reconcile.context.trace_id, "032x")


def test_a_plane_read_is_timed_by_its_steps_span_alone(
    broker: StubBroker, spans: InMemorySpanExporter, log_text: io.StringIO
) -> None:
    Dispatcher(broker).enqueue(
        "test_poll_ring", "steps", key="corr-poll/poll/a1", correlation_id="corr-poll", kwargs={"app": "web", "ring": 2}
    )
    broker.join("steps", fail_fast=True)
    assert [s.name for s in spans.get_finished_spans()] == ["step test_poll_ring"]
    polled = next(json.loads(line) for line in log_text.getvalue().splitlines() if "Polled: web ring 2" in line)
    assert polled["correlation_id"] == "corr-poll"
    assert polled["trace_id"] == format(spans.get_finished_spans()[0].context.trace_id, "032x")


def test_every_plane_call_is_either_a_read_or_an_action_that_is_spanned() -> None:
    calls = {name for name, value in vars(ExecutionPlane).items() if inspect.iscoroutinefunction(value)}
    assert calls == PLANE_READS | PLANE_ACTIONS
    assert not PLANE_READS & PLANE_ACTIONS


def test_a_failing_step_is_an_error_span_and_its_key_is_in_no_log_line_or_span(
    broker: StubBroker, spans: InMemorySpanExporter, log_text: io.StringIO
) -> None:
    labels = {"step": "test_deploy_target", "result": "error"}
    before = REGISTRY.get_sample_value("ringpilot_step_duration_seconds_count", labels) or 0
    Dispatcher(broker).enqueue(
        "test_deploy_target", "steps", key="corr-bad/deploy", correlation_id="corr-bad", kwargs={"app": "web"}
    )
    broker.join("steps")
    step = by_name(spans)["step test_deploy_target"]
    assert step.status.status_code is StatusCode.ERROR
    assert step.attributes is not None and step.attributes[CORRELATION_ATTRIBUTE] == "corr-bad"
    assert [e.attributes["exception.message"] for e in step.events if e.attributes] == [
        "plane refused the token [redacted]"
    ]
    assert REGISTRY.get_sample_value("ringpilot_step_duration_seconds_count", labels) == before + 1
    logged = log_text.getvalue()
    assert "PermissionError: plane refused the token [redacted]" in logged  # dramatiq logged the traceback
    assert KEY not in logged
    assert not any(KEY in s.to_json() for s in spans.get_finished_spans())


async def test_an_audit_row_records_the_trace_it_was_written_in(db_pool: Pool, spans: InMemorySpanExporter) -> None:
    event = AuditEvent(correlation_id="corr-audit", actor="system:ringpilot", action="StepStarted")
    with reconcile_scope("DeploymentTask", "default", "t1", "corr-audit"):
        trace_id = current_trace_id()
        await record_audit(db_pool, event)
    await record_audit(db_pool, event)
    inside, outside = await audit_trail(db_pool, "corr-audit")
    assert trace_id is not None and inside.trace_id == trace_id
    assert outside.trace_id is None


def test_without_an_exporter_spans_are_not_recorded_but_still_carry_a_trace_id() -> None:
    assert recording_sampler({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) is None  # the SDK's default
    assert recording_sampler({"OTEL_TRACES_SAMPLER": "always_on"}) is None
    provider = TracerProvider(sampler=recording_sampler({}))
    span = provider.get_tracer("t").start_span("reconcile DeploymentTask")
    assert not span.is_recording()
    assert span.get_span_context().is_valid  # logs, audit rows and traceparent still get its trace id
    child = provider.get_tracer("t").start_span("step", context=trace.set_span_in_context(span))
    assert child.get_span_context().trace_id == span.get_span_context().trace_id


async def test_exported_traces_show_each_sql_statement_and_redis_command(
    database_url: str, redis_url: str, spans: InMemorySpanExporter
) -> None:
    import psycopg
    import redis.asyncio

    instrument_libraries()
    try:
        with span("step deploy_ring", "corr-sql") as step:
            async with await psycopg.AsyncConnection.connect(database_url) as conn:
                await conn.execute("SELECT count(*) FROM audit_events WHERE correlation_id = %s", ("secret-ish",))
            client = redis.asyncio.Redis.from_url(redis_url)
            await client.set("ringpilot:test:key", "value")
            await client.aclose()
    finally:
        instrument_libraries(on=False)
    children = [
        s for s in spans.get_finished_spans() if s.parent and s.parent.span_id == step.get_span_context().span_id
    ]
    systems = {
        str((s.attributes or {}).get("db.system") or (s.attributes or {}).get("db.system.name")) for s in children
    }
    assert {"postgresql", "redis"} <= systems, [(s.name, dict(s.attributes or {})) for s in children]
    statements = " ".join(str(v) for s in children for v in (s.attributes or {}).values())
    assert "secret-ish" not in statements and "value" not in statements.split()  # parameters and values stay out


def test_a_step_delivered_twice_at_once_is_two_steps_in_the_histogram_and_two_spans(
    spans: InMemorySpanExporter,
) -> None:
    # a re-sent step (the lease ran out under load) arrives again, with the same message id, while the
    # first delivery is still running: each delivery's span and duration are its own
    middleware = TraceContext()
    broker = StubBroker(middleware=[middleware])
    broker.declare_queue("steps")
    message = Dispatcher(broker).enqueue(
        "test_twice", "steps", key="corr-twice/deploy", correlation_id="corr-twice", kwargs={}
    )
    first, second = MessageProxy(message), MessageProxy(message)
    labels = {"step": "test_twice", "result": "ok"}
    before = REGISTRY.get_sample_value("ringpilot_step_duration_seconds_count", labels) or 0
    middleware.before_process_message(broker, first)
    middleware.before_process_message(broker, second)
    middleware.after_process_message(broker, second)
    middleware.after_process_message(broker, first)
    assert REGISTRY.get_sample_value("ringpilot_step_duration_seconds_count", labels) == before + 2
    assert [s.name for s in spans.get_finished_spans()] == ["step test_twice", "step test_twice"]
    assert middleware.open == {}
