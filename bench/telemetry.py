"""Microbenchmark of telemetry's cost: a reconcile and a worker step with tracing and metrics on, next to off.

1. Reconcile: DeploymentTasks driven from Pending to Succeeded through the real reconcile with an in-memory
   world (tests/orchestration/driver.py); "on" wraps each reconcile as the operator does (reconcile scope
   with its span, correlation binding, the domain metrics of the Outcome).
2. Worker step: messages through dramatiq's stub broker and a real worker (AsyncIO) to a step that reads the
   plane's health, like a Monitor step (the most frequent and the cheapest step there is); "on" adds the
   `TraceContext` middleware (inject, step span, step histogram) and wraps the plane as the worker does
   (`traced_plane`: a plane read is timed by the step's span, a call that changes a target is a span of
   its own, on a step whose body costs tens of times a poll's: see bench/orchestration.py).

Then the added cost is set against the floor of the real stack, measured in the same run (bench/baselines.py):
a bare Kopf handler's reconcile on the emulator and a bare dramatiq message on Redis; and against what our
own reconcile and step cost at least: that floor plus our reconcile's decision (the "off" figure), and that
floor plus a real Monitor step's body (its claim in embedded PostgreSQL and a health poll of a simulated ring).

Three variants, each in a fresh process per round, rounds alternating: off; unrecorded (the default of a
process without an OTLP endpoint: spans with trace ids, metrics, no recording); recorded (every span recorded
and handed to a batch exporter that drops them). The medians are compared with off. Runs in under two minutes:

    .venv/bin/python bench/telemetry.py [--tasks 40] [--messages 400] [--rounds 9]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dramatiq
from baselines import measure as measure_baselines
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from controller.api.labels import CORRELATION_LABEL
from controller.messaging.dispatching import Dispatcher
from controller.messaging.propagation import TraceContext
from controller.planes.base import ExecutionPlane
from controller.telemetry import domainmetrics
from controller.telemetry.scopes import reconcile_scope
from controller.telemetry.tracing import bind_correlation, recording_sampler
from controller.worker.resources import traced_plane
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
    plane: Any = traced_plane(cast(ExecutionPlane, Plane()), "simulated") if instrumented else Plane()

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


async def no_task_to_wake(ctx: Any, request: Any) -> None:
    """The step runs without a DeploymentTask or an API server: there is nothing to announce."""


async def monitor_body_seconds(database_url: str, calls: int) -> float:
    """Median seconds of a real Monitor step's body (claim, health poll of 8 simulated devices, report)."""
    from controller.api.policy import load_policy
    from controller.orchestration import execution
    from controller.planes.catalog import PlaneSet
    from controller.planes.fleet import seed_fleet
    from controller.storage.db import open_pool

    execution.announce = no_task_to_wake  # type: ignore[assignment]
    pool = await open_pool(database_url, min_size=1, max_size=2)
    try:
        await seed_fleet(pool, "bench-step", {0: 8}, "1.0.0")
        ctx = execution.StepContext(pool, None, PlaneSet(None, pool), load_policy(), "bench")  # type: ignore[arg-type]
        step, body = execution.BODIES["poll_ring"]
        timings = []
        for index in range(calls):
            request = execution.StepRequest(
                namespace="bench",
                name="t",
                uid="bench-step",
                key=f"bench/t/Monitor/r0/a{index + 1}",
                step_key="bench/t/Monitor/r0",
                correlation_id="bench",
                ring=0,
                app="bench-step",
                version="1.0.0",
                plane="simulated",
            )
            started = time.perf_counter()
            await execution.execute(ctx, request, body, step)
            timings.append(time.perf_counter() - started)
        return statistics.median(timings[calls // 10 :])  # the first tenth warms the pool and caches
    finally:
        await pool.close()


def real_step_body_seconds(calls: int = 200) -> float:
    import tempfile

    from controller.devkit.embedded import EmbeddedServices
    from controller.storage.migrating import migrate

    with tempfile.TemporaryDirectory() as tmp, EmbeddedServices(Path(tmp), durable=False) as services:
        migrate(services.database_url)
        return asyncio.run(monitor_body_seconds(services.database_url, calls))


def overhead(off: list[float], on: list[float]) -> tuple[float, float, float]:
    a, b = statistics.median(off), statistics.median(on)
    return a, b, (b - a) / a * 100


VARIANTS = ("off", "unrecorded", "recorded")


def measure(variant: str, tasks: int, messages: int) -> dict[str, float]:
    """One variant in this process: microseconds per reconcile and per step."""
    if variant == "recorded":
        provider = TracerProvider()  # the SDK default sampler: every span recorded, as with an exporter
        provider.add_span_processor(BatchSpanProcessor(DropSpans()))
    else:
        provider = TracerProvider(sampler=recording_sampler({}))  # what a process without an exporter runs
    trace.set_tracer_provider(provider)
    instrumented = variant != "off"
    asyncio.run(reconcile_seconds(3, instrumented))  # warm up imports and caches
    step_seconds(20, instrumented)
    seconds, reconciles = asyncio.run(reconcile_seconds(tasks, instrumented))
    step = step_seconds(messages, instrumented) / messages
    provider.shutdown()
    return {"reconcile": seconds / reconciles * 1e6, "step": step * 1e6, "reconciles": reconciles}


def print_added(results: dict[str, list[dict[str, float]]], floors: dict[str, float], name: str) -> None:
    """A table of what each variant adds to "off", per unit, in microseconds and as a share of `floors`."""
    print(f"  {'unit':12s} {name:>10s} {'+unrecorded':>12s} {'% ' + name:>8s} {'+recorded':>10s} {'% ' + name:>8s}")
    for unit, floor in floors.items():
        off = statistics.median(r[unit] for r in results["off"])
        cells = []
        for variant in ("unrecorded", "recorded"):
            added = statistics.median(r[unit] for r in results[variant]) - off
            cells.append(f"{added:+9.1f}us {added / (floor * 1e6) * 100:7.2f}%")
        print(f"  {unit:12s} {floor * 1e3:8.2f}ms {cells[0]:>21s} {cells[1]:>19s}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one child process's part
    parser.add_argument("--no-baselines", action="store_true", help="skip the stack's floors (bare Kopf, dramatiq)")
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(measure(args.variant, args.tasks, args.messages)))
        return 0

    results: dict[str, list[dict[str, float]]] = {variant: [] for variant in VARIANTS}
    for _ in range(args.rounds):  # alternate the variants, each in a fresh process (one tracer provider each)
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--variant", variant, "--tasks", str(args.tasks)]
            command += ["--messages", str(args.messages)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[variant].append(json.loads(out.strip().splitlines()[-1]))

    print(f"telemetry overhead, medians of {args.rounds} alternating rounds (a fresh process per variant and round)")
    print("  off: no telemetry; unrecorded: spans (trace ids), metrics, logs, no exporter (the default);")
    print("  recorded: every span recorded and exported (to an exporter that drops them)")
    print(f"  {'unit':12s} {'off':>10s} {'unrecorded':>12s} {'ratio':>8s} {'recorded':>10s} {'ratio':>8s}")
    for unit in ("reconcile", "step"):
        off = statistics.median(r[unit] for r in results["off"])
        cells = []
        for variant in ("unrecorded", "recorded"):
            value = statistics.median(r[unit] for r in results[variant])
            cells.append(f"{value:9.1f}us {value / off:7.3f}x")
        print(f"  {unit:12s} {off:8.1f}us {cells[0]:>21s} {cells[1]:>19s}")
    reconciles = int(results["off"][0]["reconciles"])
    print(f"  ({args.tasks} tasks = {reconciles} in-memory reconciles per run; {args.messages} stub-broker steps)")
    print("  The baselines do no I/O (an in-memory world, a no-op step), so a ratio here is the worst case.")
    if not args.no_baselines:
        floors = measure_baselines()  # the cheapest reconcile and step the stack can do, measured now
        reconcile_floor = 1 / floors["kopf_objects_per_second"]
        step_floor = 1 / floors["dramatiq_messages_per_second"]
        print("  against the floor of the real stack (same run): a bare Kopf handler's one status patch per object")
        print("  on the emulator, and a bare dramatiq no-op message on Redis:")
        print_added(results, {"reconcile": reconcile_floor, "step": step_floor}, "floor")
        body = real_step_body_seconds()
        ours = {
            "reconcile": reconcile_floor + statistics.median(r["reconcile"] for r in results["off"]) / 1e6,
            "step": step_floor + body,
        }
        print("  against what ours cost at least (same run): that floor plus our reconcile's decision, and that")
        print(f"  floor plus a real Monitor step's body ({body * 1e3:.2f}ms: claim, poll of 8 simulated devices,")
        print("  report):")
        print_added(results, ours, "ours")
    return 0


if __name__ == "__main__":
    sys.exit(main())
