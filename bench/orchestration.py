"""Benchmark of deployment orchestration, printed next to the stack's baselines measured in the same run.

1. Throughput: N low-risk DeploymentTasks (default 200, one app each) end to end on the SIMULATED
   plane with zero soak, through the real `ringpilot controller` and `ringpilot worker` processes,
   the API emulator, embedded PostgreSQL and Redis. Prints tasks/s, task latency and the orchestration
   overhead per step (a task's wall time divided by the steps it ran: with an instant plane and no
   soak, that time is all orchestration).
2. Monitoring at scale: one health poll (the Monitor step's body, with its claim) of 100,000 simulated
   devices in ring 4, which must fit inside one poll interval (60 s by default); and the one-statement
   deploy of the same ring.

    .venv/bin/python bench/orchestration.py [--tasks 200] [--devices 2,4,8] [--fleet 100000] [--no-baselines]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
import yaml
from baselines import measure, start_emulator, write_requests
from kubernetes import client

from controller.api.policy import load_policy
from controller.devkit.embedded import EmbeddedServices
from controller.devkit.processes import ProcessGroup
from controller.devkit.seeding import apply_crds
from controller.orchestration import execution
from controller.orchestration.execution import BODIES, StepContext, StepRequest, execute
from controller.planes.catalog import PlaneSet
from controller.planes.fleet import seed_fleet, set_failure_rate
from controller.planes.simulated import SimulatedPlane
from controller.storage.db import open_pool
from controller.storage.migrating import migrate
from tests.orchestration.driver import LOW_RISK  # every input at its lowest row: the tasks auto-approve

GROUP, VERSION = "ringpilot.dev", "v1alpha1"
NS = "bench"
POLL_INTERVAL_SECONDS = 60


def bench_policy(path: Path) -> Path:
    """The dev policy with every ring's minimum soak at zero."""
    raw = load_policy().model_dump(mode="json", by_alias=True, exclude_none=False)
    for ring in raw["rings"]:
        ring["minSoakSeconds"] = 0
    path.write_text(yaml.safe_dump(raw))
    return path


def task_body(index: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DeploymentTask",
        "metadata": {"name": f"t{index:04d}", "namespace": NS},
        "spec": {
            "app": f"bench-{index:04d}",
            "version": "2.0.0",
            "maxRing": 2,
            "plane": "simulated",
            "requestedBy": "dev-publisher",
            "monitor": {"pollIntervalSeconds": 1, "soakSeconds": 0},
            "risk": LOW_RISK,
        },
    }


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def seed(database_url: str, tasks: int, sizes: dict[int, int]) -> None:
    pool = await open_pool(database_url, min_size=1, max_size=2)
    try:
        for index in range(tasks):
            await seed_fleet(pool, f"bench-{index:04d}", sizes, "1.0.0")
    finally:
        await pool.close()


def latency(item: dict[str, Any]) -> float:
    status = item["status"]
    return (parse_time(status["finishedAt"]) - parse_time(item["metadata"]["creationTimestamp"])).total_seconds()


def steps_of(item: dict[str, Any]) -> int:
    return sum(s.get("attempts", 0) for s in item["status"]["steps"])


def run_batch(
    custom: client.CustomObjectsApi, indexes: list[int], poll_seconds: float = 0.5
) -> tuple[list[dict[str, Any]], float]:
    """Create the tasks, wait until every one has finished; the tasks and the wall time (to `poll_seconds`)."""
    names = {f"t{i:04d}" for i in indexes}
    started = time.monotonic()
    for index in indexes:
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, "deploymenttasks", task_body(index))
    while True:
        listing = custom.list_namespaced_custom_object(GROUP, VERSION, NS, "deploymenttasks")["items"]
        items = [it for it in listing if it["metadata"]["name"] in names]
        phases = [(it.get("status") or {}).get("phase") for it in items]
        if sum(1 for p in phases if p in ("Succeeded", "Failed", "RolledBack")) >= len(indexes):
            return items, time.monotonic() - started
        if "AwaitingApproval" in phases:
            raise RuntimeError("a benchmark task waits for CAB approval: its risk inputs are not all low")
        if time.monotonic() - started > 1800:
            raise TimeoutError(f"tasks did not finish: {sorted(set(map(str, phases)))}")
        time.sleep(poll_seconds)


def swept(custom: client.CustomObjectsApi, limit_seconds: float) -> None:
    """Wait until every Assignment in the namespace has its first status (the sweep's first check writes it)."""
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, NS, "assignments")["items"]
        if items and all((it.get("status") or {}).get("observedGeneration") for it in items):
            time.sleep(1.0)  # the last status writes and the worker's last announcement land
            return
        time.sleep(0.2)
    raise TimeoutError("the drift sweep did not check the task's Assignments")


STATEMENT = re.compile(r"LOG:\s+(statement|execute [^:]*):")


def api_writes(emulator_log: Path) -> Counter[str]:
    """Write requests the emulator served so far (its --verbose access log): "all", and "ours" (ringpilot.dev)."""
    counts: Counter[str] = Counter()
    for _, _, path, _ in write_requests(emulator_log):
        counts["all"] += 1
        counts["ours"] += "/apis/ringpilot.dev/" in path
    return counts


def sql_statements(log_dir: Path) -> int:
    """Statements PostgreSQL logged so far (log_statement=all, while it is on)."""
    return sum(len(STATEMENT.findall(path.read_text(errors="replace"))) for path in log_dir.glob("postgres.log*"))


def log_statements(database_url: str, on: bool) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET log_statement = '{'all' if on else 'none'}'")
        conn.execute("SELECT pg_reload_conf()")
    time.sleep(0.5)  # the server reads its configuration again


def throughput(tasks: int, sizes: dict[int, int]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedServices(Path(tmp) / "services", durable=False) as svc:
        workdir = Path(tmp)
        migrate(svc.database_url)
        asyncio.run(seed(svc.database_url, tasks + 1, sizes))
        group = ProcessGroup()
        try:
            api = start_emulator(group, workdir, verbose=True)  # its access log counts the writes
            apply_crds(api)
            client.CoreV1Api(api).create_namespace({"metadata": {"name": NS}})
            env = {
                **os.environ,
                "KUBECONFIG": str(workdir / "kubeconfig"),
                "RINGPILOT_DATABASE_URL": svc.database_url,
                "RINGPILOT_REDIS_URL": svc.redis_url,
                "RINGPILOT_POLICY_FILE": str(bench_policy(workdir / "policy.yaml")),
                "RINGPILOT_RESYNC_INTERVAL_SECONDS": "30",
                "RINGPILOT_LIVENESS_PORT": "0",
                "RINGPILOT_THREADS": "8",
                "RINGPILOT_LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
            cli = [sys.executable, "-m", "controller.cli"]
            group.spawn("worker", [*cli, "worker"], env, workdir / "worker.log")
            group.spawn("controller", [*cli, "controller"], env, workdir / "controller.log")
            time.sleep(5.0)  # both processes booted and watching
            custom = client.CustomObjectsApi(api)
            # one task alone, the overhead without contention: timed on this clock, to 20 ms (the task's own
            # timestamps have whole seconds, finer than which a solo task now finishes)
            logs = workdir / "services" / "logs"
            log_statements(svc.database_url, True)
            writes_before, sql_before = api_writes(workdir / "emulator.log"), sql_statements(logs)
            solo, solo_seconds = run_batch(custom, [tasks], poll_seconds=0.02)
            swept(custom, 60.0)  # its Assignments' first status is the drift sweep's: counted with the task's
            writes, sql = api_writes(workdir / "emulator.log") - writes_before, sql_statements(logs) - sql_before
            log_statements(svc.database_url, False)
            items, elapsed = run_batch(custom, list(range(tasks)))
        finally:
            group.stop_all()
    solo_latency, solo_steps = solo_seconds, steps_of(solo[0])
    succeeded = [it for it in items if it["status"]["phase"] == "Succeeded"]
    failures = Counter(
        next(
            (c["reason"] + ": " + c["message"][:160] for c in it["status"]["conditions"] if c["type"] == "Ready"),
            "?",
        )
        for it in items
        if it["status"]["phase"] != "Succeeded"
    )
    for reason, count in failures.most_common(5):
        print(f"{count} tasks did not succeed: {reason}", file=sys.stderr)
    if not succeeded:
        raise RuntimeError("no task succeeded")
    latencies = [
        (parse_time(it["status"]["finishedAt"]) - parse_time(it["metadata"]["creationTimestamp"])).total_seconds()
        for it in succeeded
    ]
    steps = [sum(s.get("attempts", 0) for s in it["status"]["steps"]) for it in succeeded]
    per_step = [lat / max(1, n) for lat, n in zip(latencies, steps, strict=True)]
    return {
        "tasks": float(tasks),
        "succeeded": float(len(succeeded)),
        "elapsed_seconds": elapsed,
        "tasks_per_second": tasks / elapsed,
        "latency_p50_seconds": statistics.median(latencies),
        "latency_p95_seconds": statistics.quantiles(latencies, n=20)[18] if len(latencies) > 1 else latencies[0],
        "steps_per_task": statistics.mean(steps),
        "overhead_per_step_seconds": statistics.mean(per_step),
        "solo_latency_seconds": solo_latency,
        "solo_overhead_per_step_seconds": solo_latency / max(1, solo_steps),
        # one task alone, without the bench's own create and reads: what the controller and worker did
        "solo_api_writes": float(writes["all"] - 1),
        "solo_writes_to_our_kinds": float(writes["ours"] - 1),
        "solo_sql_statements": float(sql),
    }


async def no_task_to_wake(ctx: StepContext, request: StepRequest) -> None:
    """The monitor test runs step bodies without a DeploymentTask or an API server: nothing to announce."""


async def monitor_at_scale(database_url: str, fleet: int) -> dict[str, float]:
    execution.announce = no_task_to_wake  # type: ignore[assignment]
    pool = await open_pool(database_url, min_size=1, max_size=4)
    try:
        await seed_fleet(pool, "bench-global", {4: fleet}, "1.0.0")
        plane = SimulatedPlane(pool)
        ctx = StepContext(pool, None, PlaneSet(None, pool), load_policy(), "bench")  # type: ignore[arg-type]
        request = StepRequest(
            namespace=NS,
            name="g",
            uid="bench-global",
            key="bench/g/Deploy/r4/a1",
            step_key="bench/g/Deploy/r4",
            correlation_id="bench",
            ring=4,
            app="bench-global",
            version="2.0.0",
            plane="simulated",
        )
        started = time.monotonic()
        result = await plane.apply_ring("bench-global", 4, "2.0.0", request.step_key)
        deploy_seconds = time.monotonic() - started
        await set_failure_rate(pool, "bench-global", 4, 0.01, "2.0.0")
        step, body = BODIES["poll_ring"]
        timings = []
        report: dict[str, Any] | None = None
        for attempt in range(1, 4):
            poll = StepRequest(**{**request.__dict__, "key": f"bench/g/Monitor/r4/a{attempt}"})
            started = time.monotonic()
            report = await execute(ctx, poll, body, step)
            timings.append(time.monotonic() - started)
        assert report is not None and report["ok"], report
        return {
            "devices": float(fleet),
            "deploy_seconds": deploy_seconds,
            "deployed": float(result.changed),
            "poll_seconds": min(timings),
            "healthy": float(report["healthy"]),
        }
    finally:
        await pool.close()


def scale(fleet: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedServices(Path(tmp), durable=False) as services:
        migrate(services.database_url)
        return asyncio.run(monitor_at_scale(services.database_url, fleet))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--devices", default="2,4,8", help="simulated devices per app in rings 0,1,2")
    parser.add_argument("--fleet", type=int, default=100_000, help="devices in ring 4 for the monitor test")
    parser.add_argument("--no-baselines", action="store_true")
    args = parser.parse_args()
    sizes = dict(enumerate(int(n) for n in args.devices.split(",")))
    base = {} if args.no_baselines else measure()
    run = throughput(args.tasks, sizes)
    big = scale(args.fleet)
    width = 60
    print(f"Ringpilot orchestration benchmark ({os.cpu_count()} cores)")
    if base:
        print(
            f"{'baseline: bare Kopf handler on the emulator (objects/s)':<{width}} "
            f"{base['kopf_objects_per_second']:>10.1f}"
        )
        print(
            f"{'baseline: bare dramatiq no-op, 1 proc x 4 thr (msg/s)':<{width}} "
            f"{base['dramatiq_messages_per_second']:>10.1f}"
        )
    print(f"{'DeploymentTasks, rings 0-2, simulated, zero soak':<{width}} {int(run['tasks']):>10d}")
    print(f"{'  succeeded':<{width}} {int(run['succeeded']):>10d}")
    print(f"{'  tasks per second':<{width}} {run['tasks_per_second']:>10.2f}")
    if base:
        ratio = run["tasks_per_second"] / base["kopf_objects_per_second"]
        print(f"{'  ... as a fraction of bare Kopf objects/s':<{width}} {ratio:>10.3f}")
    print(
        f"{'  task latency p50 / p95 (s)':<{width}} "
        f"{run['latency_p50_seconds']:>5.1f} / {run['latency_p95_seconds']:.1f}"
    )
    print(f"{'  steps per task (attempts incl. polls)':<{width}} {run['steps_per_task']:>10.1f}")
    print(f"{'  orchestration overhead per step, all at once (s)':<{width}} {run['overhead_per_step_seconds']:>10.2f}")
    print(f"{'  one task alone: latency (s)':<{width}} {run['solo_latency_seconds']:>10.2f}")
    print(f"{'  one task alone: overhead per step (s)':<{width}} {run['solo_overhead_per_step_seconds']:>10.2f}")
    print(f"{'  one task alone: API writes (floor ~25)':<{width}} {int(run['solo_api_writes']):>10d}")
    ours = int(run["solo_writes_to_our_kinds"])
    print(f"{'  one task alone: writes to our kinds (= controller watch events)':<{width}} {ours:>10d}")
    print(f"{'  one task alone: SQL statements (floor ~50)':<{width}} {int(run['solo_sql_statements']):>10d}")
    print(f"{'Monitor of ring 4: simulated devices':<{width}} {int(big['devices']):>10d}")
    print(f"{'  deploy of the ring, one statement (s)':<{width}} {big['deploy_seconds']:>10.2f}")
    print(f"{'  one health poll with its claim (s)':<{width}} {big['poll_seconds']:>10.3f}")
    fits = big["poll_seconds"] < POLL_INTERVAL_SECONDS
    print(f"{f'  fits in one poll interval ({POLL_INTERVAL_SECONDS} s)':<{width}} {'yes' if fits else 'NO':>10}")


if __name__ == "__main__":
    main()
