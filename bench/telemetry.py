"""Microbenchmark of telemetry's cost: a reconcile and a worker step with tracing and metrics on, next to off.

1. Reconcile: DeploymentTasks driven from Pending to Succeeded through the real reconcile with an in-memory
   world (tests/orchestration/driver.py); "on" wraps each reconcile as the operator does (reconcile scope
   with its span, correlation binding, the domain metrics of the Outcome).
2. Worker step: messages through dramatiq's stub broker and a real worker (AsyncIO) to a step that calls a
   plane; "on" adds the `TraceContext` middleware (inject, step span, step histogram) and traced plane calls.

Spans go to an SDK tracer provider with a batch processor and an exporter that drops them. Rounds alternate
off and on in the same process; the medians are compared (the issue asks for under 5 %). Runs in seconds:

    .venv/bin/python bench/telemetry.py [--tasks 40] [--messages 400] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from controller.api.labels import CORRELATION_LABEL
from controller.messaging.dispatching import Dispatcher
from controller.messaging.propagation import TraceContext
from controller.telemetry import domainmetrics
from controller.telemetry.scopes import reconcile_scope
from controller.telemetry.tracing import TracedProxy, bind_correlation
from tests.orchestration import driver


class DropSpans(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class InstrumentedRun(driver.Run):
    """A `Run` whose reconciles go through the same telemetry calls as controller/operator/handlers.py."""

    async def tick(self) -> Any:
        original = driver.reconcile_with

        async def observed(world: Any, info: Any, body: dict[str, Any], deps: Any, now: Any) -> Any:
            meta = body["metadata"]
            correlation_id = meta["labels"].get(CORRELATION_LABEL, "")
            with reconcile_scope(info.kind, meta["namespace"], meta["name"], correlation_id):
                outcome = await original(world, info, body, deps, now)
                bind_correlation(correlation_id)
                domainmetrics.observe_outcome(info.kind, body, outcome.status, outcome.audits, now)
                return outcome

        driver.reconcile_with = observed  # type: ignore[assignment]
        try:
            return await super().tick()
        finally:
            driver.reconcile_with = original


async def reconcile_seconds(tasks: int, instrumented: bool) -> tuple[float, int]:
    """Seconds to drive `tasks` tasks to Succeeded, and the reconciles that took."""
    kind = InstrumentedRun if instrumented else driver.Run
    reconciles = 0
    started = time.perf_counter()
    for index in range(tasks):
        run = kind({}, name=f"t{index}")
        for _ in range(300):
            await run.tick()
            reconciles += 1
            if run.phase == "Succeeded":
                break
    return time.perf_counter() - started, reconciles


class Plane:
    async def health(self, app: str, ring: int) -> dict[str, int]:
        await asyncio.sleep(0)
        return {"targets": 10, "healthy": 10, "ring": ring}


def step_seconds(messages: int, instrumented: bool) -> float:
    """Seconds for a worker to process `messages` steps that each call the plane once."""
    middleware: list[Any] = [TraceContext(), AsyncIO()] if instrumented else [AsyncIO()]
    broker = StubBroker(middleware=middleware)
    broker.declare_queue("steps")
    plane: Any = TracedProxy(Plane(), "plane simulated") if instrumented else Plane()

    async def poll(app: str, ring: int, correlation_id: str) -> None:
        await plane.health(app, ring)

    dramatiq.actor(poll, broker=broker, actor_name="bench_poll", queue_name="steps")
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=20)
    worker.start()
    dispatcher = Dispatcher(broker)
    try:
        started = time.perf_counter()
        for index in range(messages):
            dispatcher.enqueue(
                "bench_poll",
                "steps",
                key=f"bench/{index}/{time.perf_counter_ns()}",
                correlation_id="cid-b",
                kwargs={"app": "web", "ring": index % 5},
            )
        broker.join("steps", fail_fast=True)
        return time.perf_counter() - started
    finally:
        worker.stop()
        broker.close()


def overhead(off: list[float], on: list[float]) -> tuple[float, float, float]:
    a, b = statistics.median(off), statistics.median(on)
    return a, b, (b - a) / a * 100


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropSpans()))
    trace.set_tracer_provider(provider)

    asyncio.run(reconcile_seconds(3, True))  # warm up imports and caches
    step_seconds(20, True)
    rec_off: list[float] = []
    rec_on: list[float] = []
    step_off: list[float] = []
    step_on: list[float] = []
    reconciles = 0
    for _ in range(args.rounds):
        seconds, reconciles = asyncio.run(reconcile_seconds(args.tasks, False))
        rec_off.append(seconds / reconciles)
        seconds, reconciles = asyncio.run(reconcile_seconds(args.tasks, True))
        rec_on.append(seconds / reconciles)
        step_off.append(step_seconds(args.messages, False) / args.messages)
        step_on.append(step_seconds(args.messages, True) / args.messages)
    provider.shutdown()

    print(f"telemetry overhead, medians of {args.rounds} alternating rounds (same process)")
    for label, off, on in (("reconcile", rec_off, rec_on), ("worker step", step_off, step_on)):
        a, b, pct = overhead(off, on)
        verdict = "ok" if pct < 5 else "OVER 5 %"
        print(f"  {label:12s} off {a * 1e6:9.1f} us   on {b * 1e6:9.1f} us   overhead {pct:+6.2f} %  {verdict}")
    print(f"  ({args.tasks} tasks = {reconciles} reconciles per round; {args.messages} steps per round)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
