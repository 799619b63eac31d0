"""Benchmark of the drift sweep: one check cycle over 10,000 Assignments in 50 namespaces.

Starts the API emulator (its own process, so its CPU is not counted) and an embedded PostgreSQL,
creates the workloads (a Deployment per Assignment, one ConfigMap per namespace) and the
Assignments, then runs the real sweep in this process (KubeCluster, KubernetesPlane, PgLedger,
DriftSweeper) and prints, per cycle: wall time, API calls (reads and writes), CPU time and peak
memory. It repeats the steady-state cycle on subsets to show that API calls grow with namespaces,
not with Assignments.

    .venv/bin/python bench/drift.py [--assignments 10000] [--namespaces 50]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from baselines import start_emulator
from kubernetes import client

from controller.api.labels import APP_NAME_LABEL, RING_NAMESPACE_LABEL
from controller.api.meta import utcnow
from controller.api.policy import load_policy
from controller.devkit.embedded import EmbeddedServices
from controller.devkit.processes import ProcessGroup
from controller.devkit.seeding import apply_crds
from controller.planes.catalog import PlaneSet
from controller.planes.manifests import config_hash
from controller.remediation.cluster import KubeCluster
from controller.remediation.ledger import PgLedger
from controller.remediation.sweeping import CycleReport, DriftSweeper, relist_seconds
from controller.storage.db import open_pool
from controller.storage.migrating import migrate

GROUP, VERSION = "ringpilot.dev", "v1alpha1"
DATA = {"LOG_LEVEL": "info", "FEATURE_FLAGS": "checkout-v2"}
CRITICALITIES = ("critical", "high", "standard", "low")
T = TypeVar("T")


class CallCounter:
    """Counts the HTTP requests an ApiClient sends, by method."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        original = api_client.rest_client.request

        def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.counts[method.upper()] += 1
            return original(method, url, *args, **kwargs)

        api_client.rest_client.request = counted

    def reset(self) -> Counter[str]:
        with self._lock:
            counts, self.counts = self.counts, Counter()
        return counts


def namespace_name(index: int) -> str:
    return f"drift-bench-{index:03d}"


def deployment(namespace: str, name: str) -> dict[str, Any]:
    labels = {APP_NAME_LABEL: name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": f"registry.example.com/team/{name}:1.4.1",
                            "envFrom": [{"configMapRef": {"name": "shared-config"}}],
                        }
                    ]
                },
            },
        },
    }


AVAILABLE = {
    "status": {
        "observedGeneration": 1,
        "replicas": 1,
        "updatedReplicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}],
    }
}


def assignment(namespace: str, name: str, index: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Assignment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "app": name,
            "version": "1.4.1",
            "ring": 0,
            "criticality": CRITICALITIES[index % 4],
            "target": {"plane": "kubernetes", "namespace": namespace, "name": name},
            "config": {"configMap": "shared-config", "sha256": config_hash(DATA)},
            "drift": {"mode": "Enforce"},
        },
    }


def populate(api: client.ApiClient, assignments: int, namespaces: int, workers: int) -> float:
    """Namespaces, ConfigMaps, available Deployments and Assignments; returns the seconds it took."""
    started = time.monotonic()
    core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    for n in range(namespaces):
        ns = namespace_name(n)
        core.create_namespace({"metadata": {"name": ns, "labels": {RING_NAMESPACE_LABEL: "0"}}})
        core.create_namespaced_config_map(ns, {"metadata": {"name": "shared-config"}, "data": DATA})

    def one(i: int) -> None:
        ns, name = namespace_name(i % namespaces), f"app-{i:05d}"
        apps.create_namespaced_deployment(ns, deployment(ns, name))
        apps.patch_namespaced_deployment_status(name, ns, AVAILABLE)
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, "assignments", assignment(ns, name, i))

    with ThreadPoolExecutor(workers) as pool:
        for done, _ in enumerate(pool.map(one, range(assignments)), 1):
            if done % 2000 == 0:
                print(f"  created {done}/{assignments} workloads and Assignments", flush=True)
    return time.monotonic() - started


@dataclass
class Measured:
    seconds: float
    cpu_seconds: float
    rss_mib: float
    calls: Counter[str]
    heap_mib: float | None = None


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def measuring(counter: CallCounter, trace_memory: bool) -> Iterator[dict[str, Any]]:
    """Wall and CPU time, API calls, peak RSS; with `trace_memory`, the Python heap peak (slower)."""
    counter.reset()
    if trace_memory:
        tracemalloc.start()
    result: dict[str, Any] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield result
    finally:
        heap = tracemalloc.get_traced_memory()[1] / 2**20 if trace_memory else None
        if trace_memory:
            tracemalloc.stop()
        result["measured"] = Measured(
            time.perf_counter() - wall, time.process_time() - cpu, peak_rss_mib(), counter.reset(), heap
        )


async def timed(
    counter: CallCounter, work: Callable[[], Awaitable[T]], trace_memory: bool = False
) -> tuple[T, Measured]:
    with measuring(counter, trace_memory) as box:
        value = await work()
    return value, box["measured"]


def line(label: str, m: Measured, report: CycleReport | None = None) -> str:
    calls = sum(m.calls.values())
    writes = sum(v for k, v in m.calls.items() if k != "GET")
    what = (
        f"checked {report.checked:>6} in {report.groups:>3} groups, wrote {report.written:>6}, opened {report.opened}"
        if report
        else ""
    )
    memory = f"heap peak {m.heap_mib:6.1f} MiB" if m.heap_mib is not None else f"peak RSS {m.rss_mib:5.0f} MiB"
    return (
        f"{label:<46} {m.seconds:6.2f} s wall {m.cpu_seconds:6.2f} s CPU  {memory}  "
        f"API calls {calls:>6} ({calls - writes} reads, {writes} writes)  {what}"
    )


@dataclass
class Row:
    """One measured step of the benchmark, as printed on one line."""

    label: str
    measured: Measured
    cycle: CycleReport | None = None

    @property
    def api_calls(self) -> int:
        return sum(self.measured.calls.values())


@dataclass
class DriftReport:
    """What the benchmark measured, by step: `relist`, `first`, `steady`, `traced`, `tenth`, `few_namespaces`."""

    rows: dict[str, Row] = field(default_factory=dict)
    entries: int = 0

    def add(self, key: str, label: str, measured: Measured, cycle: CycleReport | None = None) -> None:
        self.rows[key] = Row(label, measured, cycle)
        print(line(label, measured, cycle))


async def sweep(api: client.ApiClient, database_url: str, counter: CallCounter, namespaces: int) -> DriftReport:
    pool = await open_pool(database_url, min_size=1, max_size=4)
    policy = load_policy(None)
    sweeper = DriftSweeper(KubeCluster(api), PlaneSet(api, pool), PgLedger(pool), policy)
    out = DriftReport()
    now = utcnow()
    _, listed = await timed(counter, lambda: sweeper.relist(now))
    out.add("relist", f"relist (every {relist_seconds(policy):.0f} s, not per cycle)", listed)
    first, m1 = await timed(counter, lambda: sweeper.cycle(now))
    out.add("first", "cycle 1: first check, writes every status", m1, first)
    later = now + timedelta(seconds=policy.remediation.check_interval_seconds.low + 1)
    steady, m2 = await timed(counter, lambda: sweeper.cycle(later))
    out.add("steady", "cycle 2: steady state, every Assignment due", m2, steady)
    for entry in sweeper.entries.values():
        entry.next_check_at = None
    traced, m3 = await timed(counter, lambda: sweeper.cycle(later + timedelta(minutes=1)), trace_memory=True)
    out.add("traced", "cycle 2 again under tracemalloc (slower)", m3, traced)
    everything = dict(sweeper.entries)

    async def subset(key: str, label: str, keep: Callable[[int, int], bool], at: Any) -> None:
        sweeper.entries = {
            u: e
            for u, e in everything.items()
            if keep(
                int(e.resource.metadata.name.split("-")[1]),
                int((e.resource.metadata.namespace or "x-0").rsplit("-", 1)[1]),
            )
        }
        for entry in sweeper.entries.values():
            entry.next_check_at = None
        report, m = await timed(counter, lambda: sweeper.cycle(at))
        out.add(key, label, m, report)

    few = max(1, namespaces // 5)
    await subset(
        "tenth",
        f"steady, a tenth of the Assignments, {namespaces} namespaces",
        lambda i, ns: (i // namespaces) % 10 == 0,
        later + timedelta(hours=1),
    )
    await subset(
        "few_namespaces",
        f"steady, the Assignments of {few} namespaces",
        lambda i, ns: ns < few,
        later + timedelta(hours=2),
    )
    sweeper.entries = everything
    out.entries = len(everything)
    print(
        f"entries held by the sweep: {len(everything)}; process peak RSS {peak_rss_mib():.0f} MiB "
        f"(this process is the controller's sweep; the emulator runs in its own)"
    )
    await pool.close()
    return out


def run(argv: list[str] | None = None) -> DriftReport:
    """Run the benchmark as `main` does and return what it measured (the tests read this, not stdout)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--assignments", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--workers", type=int, default=8, help="threads creating objects")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ringpilot-drift-bench-") as tmp:
        workdir = Path(tmp)
        group = ProcessGroup()
        try:
            with EmbeddedServices(workdir / "services", durable=False) as services:
                migrate(services.database_url)
                api = start_emulator(group, workdir)
                api.configuration.connection_pool_maxsize = max(args.workers, 8)
                api.rest_client.pool_manager.connection_pool_kw["maxsize"] = max(args.workers, 8)
                apply_crds(api)
                print(f"Drift sweep benchmark: {args.assignments} Assignments over {args.namespaces} namespaces")
                seconds = populate(api, args.assignments, args.namespaces, args.workers)
                print(f"setup: {seconds:.1f} s to create the workloads and Assignments (not measured below)")
                counter = CallCounter(api)
                report = asyncio.run(sweep(api, services.database_url, counter, args.namespaces))
                api.close()
        finally:
            group.stop_all()
    return report


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
