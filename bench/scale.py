"""Benchmark of Ringpilot at scale: the controller at rest, and one full drift check of 100,000 Assignments.

1. At rest, per size in --idle-sizes: the real `ringpilot controller` (the shipped policy with the domain's
   production drift check intervals unless --check-intervals shipped, default resync, no worker)
   on the API emulator (started with --verbose, so its access log counts every write call), embedded
   PostgreSQL and Redis, holding N Assignments with healthy workloads (drift.populate). Measures the first
   start (spawn until every Assignment has status.observedGeneration and a sync, and the controller's CPU stays under
   5 % of a core for 3 one-second windows), CPU and RSS at rest over --idle-seconds, and the catch-up of a
   restart; API writes in each period. Baseline from the same run: a bare Kopf operator holding N items.
2. A full drift check of --sweep-size Assignments by the real DriftSweeper on the in-memory fakes of
   tests/remediation/inmemory.py (the emulator is one Python process and cannot hold 100k objects), next
   to the same check of 10,000, each in a fresh process so its peak RSS is its own.
3. A task's steps (bench/stepcosts.py): tasks/s and per-step overhead for 1 and --tasks concurrent tasks,
   API writes, watch events and SQL statements per task against perf.md's floor, next to the same
   benchmark of --baseline-commit run from a git worktree in this run; then chat p50/p99 at 1 and 20
   conversations (bench/chat.py).

    .venv/bin/python bench/scale.py [--idle-sizes 1000,10000] [--idle-seconds 60] [--sweep-size 100000]
        [--namespaces 50] [--tasks 200] [--baseline-commit 8b3d62f] [--chat-turns 12]
        [--skip-idle] [--skip-sweep] [--skip-steps] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
import yaml
from baselines import CRD, HERE, start_emulator, write_requests
from baselines import GROUP as ITEMS_GROUP
from drift import CRITICALITIES, populate
from kubernetes import client
from stepcosts import print_step_costs

from controller.api.policy import CheckIntervals, load_policy
from controller.devkit.embedded import EmbeddedServices
from controller.devkit.processes import Child, ProcessGroup
from controller.devkit.seeding import apply_crds
from controller.remediation.sweeping import DriftSweeper
from controller.storage.migrating import migrate
from tests.remediation.inmemory import NOW, REPO, FakeCluster, FakePlane, MemoryLedger, Planes, Workload, spec

GROUP, VERSION = "ringpilot.dev", "v1alpha1"
AGENT = "ringpilot-bench"  # this script's own calls, left out of the write counts
QUIET_SHARE, QUIET_WINDOWS = 0.05, 3


def emulator(group: ProcessGroup, workdir: Path, pool: int) -> client.ApiClient:
    """baselines.start_emulator with --verbose (the access log has a line per request); our calls tagged."""
    api = start_emulator(group, workdir, verbose=True)
    api.user_agent = AGENT
    api.rest_client.pool_manager.connection_pool_kw["maxsize"] = pool
    return api


def resource_of(path: str) -> str:
    """`/apis/g/v/namespaces/ns/assignments/a/status?x` -> `assignments/status`."""
    parts = path.split("?")[0].strip("/").split("/")
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if len(rest) > 2 and rest[0] == "namespaces":
        rest = rest[2:]
    return rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")


def writes(log: Path, start: float, end: float) -> Counter[str]:
    """Write calls by verb, resource and client (kopf or the kubernetes client) between two time.time()s."""
    found: Counter[str] = Counter()
    for at, verb, path, agent in write_requests(log):
        if agent != AGENT and start <= at <= end:
            who = "kopf" if agent.startswith("kopf") else "client"
            found[f"{verb} {resource_of(path)} ({who})"] += 1
    return found


def tree(child: Child) -> list[psutil.Process]:
    if child.process.poll() is not None:
        raise RuntimeError(f"{child.name} exited with code {child.process.returncode}; see {child.log_path}")
    proc = psutil.Process(child.process.pid)
    return [proc, *proc.children(recursive=True)]


def cpu_seconds(child: Child) -> float:
    return sum(t.user + t.system for t in (p.cpu_times() for p in tree(child)))


def rss_mib(child: Child) -> float:
    return sum(p.memory_info().rss for p in tree(child)) / 2**20


def catch_up(child: Child, log: Path, ready: Callable[[], bool], timeout: float = 3600) -> tuple[float, Counter[str]]:
    """Seconds from the spawn of `child` to the start of 3 quiet 1 s windows after `ready()`, and the writes."""
    spawned = time.time() - (time.monotonic() - child.started_at)
    is_ready, checked = False, 0.0
    quiet: list[float] = []
    while len(quiet) < QUIET_WINDOWS:
        if time.monotonic() - child.started_at > timeout:
            raise TimeoutError(f"{child.name} did not catch up within {timeout:.0f} s; see {child.log_path}")
        if not is_ready and time.monotonic() - checked >= 2.0:
            is_ready, checked, quiet = ready(), time.monotonic(), []
        start, before = time.monotonic(), cpu_seconds(child)
        time.sleep(1.0)
        share = (cpu_seconds(child) - before) / (time.monotonic() - start)
        quiet = [*quiet, start] if is_ready and share < QUIET_SHARE else []
    return quiet[0] - child.started_at, writes(log, spawned, time.time())


@dataclass
class Run:
    """One operator holding N objects: first start, at rest, restart catch-up."""

    first_seconds: float
    first_writes: Counter[str]
    cpu_percent: float
    rss_mib: float
    rest_writes: Counter[str]
    restart_seconds: float
    restart_writes: Counter[str]


def measure(group: ProcessGroup, child: Child, log: Path, ready: Callable[[], bool], idle: float) -> Run:
    first, first_writes = catch_up(child, log, ready)
    start, wall, cpu, peak = time.time(), time.monotonic(), cpu_seconds(child), 0.0
    while time.monotonic() - wall < idle:
        time.sleep(1.0)
        peak = max(peak, rss_mib(child))
    share = (cpu_seconds(child) - cpu) / (time.monotonic() - wall)
    rest_writes = writes(log, start, time.time())
    group.restart(child)  # SIGTERM, wait, start again with the same command line and environment
    restart, restart_writes = catch_up(child, log, lambda: True)
    return Run(first, first_writes, 100 * share, peak, rest_writes, restart, restart_writes)


def settled(custom: client.CustomObjectsApi, size: int, bare: bool) -> bool:
    """All `size` objects handled: items have status.done; Assignments status.observedGeneration == generation
    and a `sync` (the drift sweep's first check of each is done)."""
    if bare:
        items = custom.list_namespaced_custom_object(ITEMS_GROUP, "v1", "default", "items")["items"]
        return sum(1 for it in items if (it.get("status") or {}).get("done")) >= size
    items = custom.list_cluster_custom_object(GROUP, VERSION, "assignments")["items"]
    generations = [((it.get("status") or {}).get("observedGeneration"), it["metadata"]["generation"]) for it in items]
    checked = all((it.get("status") or {}).get("sync") for it in items)  # the sweep's first check wrote each
    return len(items) >= size and checked and all(seen == wanted for seen, wanted in generations)


def production_policy(path: Path) -> Path:
    """The shipped policy with the domain's production check intervals (15 min, 30 min, 1 h, 4 h by criticality).

    The shipped dev policy checks critical Assignments every minute: at 10k that is ~74 drift checks a second,
    the sweep's work rather than the cost of holding the fleet.
    """
    raw = load_policy(None).model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["remediation"]["checkIntervalSeconds"] = CheckIntervals().model_dump(mode="json", by_alias=True)
    path.write_text(yaml.safe_dump(raw))
    return path


def at_rest(size: int, args: argparse.Namespace, bare: bool) -> Run:
    """The Ringpilot controller (with `bare`, the bare Kopf operator) holding `size` objects; see `measure`."""
    with tempfile.TemporaryDirectory(prefix="ringpilot-scale-") as tmp, ExitStack() as stack:
        workdir, group = Path(tmp), ProcessGroup(log_max_bytes=1 << 40)  # no rotation: the log is counted
        env = {**os.environ, "KUBECONFIG": str(workdir / "kubeconfig"), "PYTHONUNBUFFERED": "1"}
        for name in ("RINGPILOT_POLICY_FILE", "RINGPILOT_RESYNC_INTERVAL_SECONDS"):  # the defaults, as shipped
            env.pop(name, None)
        if not bare and args.check_intervals == "production":
            env["RINGPILOT_POLICY_FILE"] = str(production_policy(workdir / "policy.yaml"))
        if not bare:
            services = stack.enter_context(EmbeddedServices(workdir / "services", durable=False))
            migrate(services.database_url)
            env.update(RINGPILOT_DATABASE_URL=services.database_url, RINGPILOT_REDIS_URL=services.redis_url)
            env.update(RINGPILOT_DATA_DIR=str(workdir / "data"), RINGPILOT_LIVENESS_PORT="0")
            env.update(RINGPILOT_LOG_LEVEL="WARNING")
        stack.callback(group.stop_all)  # runs before the services stop
        api = emulator(group, workdir, max(args.workers, 8))
        stack.callback(api.close)
        custom = client.CustomObjectsApi(api)
        if bare:
            client.ApiextensionsV1Api(api).create_custom_resource_definition(CRD)  # type: ignore[arg-type]
            meta = {"apiVersion": f"{ITEMS_GROUP}/v1", "kind": "Item"}
            bodies = [{**meta, "metadata": {"name": f"i{i}"}, "spec": {"n": i}} for i in range(size)]
            create = partial(custom.create_namespaced_custom_object, ITEMS_GROUP, "v1", "default", "items")
            with ThreadPoolExecutor(args.workers) as pool:
                list(pool.map(create, bodies))
            kopf = [sys.executable, "-m", "kopf", "run", "-A", "--standalone", "--quiet"]
            argv = [*kopf, str(HERE / "bare_operator.py")]
        else:
            apply_crds(api)
            seconds = populate(api, size, args.namespaces, args.workers)
            print(f"  setup: {seconds:.1f} s to create {size} Assignments and their workloads", flush=True)
            argv = [sys.executable, "-m", "controller.cli", "controller"]
        name = "kopf" if bare else "controller"
        child = group.spawn(name, argv, env, workdir / f"{name}.log")
        run = measure(group, child, workdir / "emulator.log", lambda: settled(custom, size, bare), args.idle_seconds)
        logged = (workdir / f"{name}.log").read_text(errors="replace").splitlines()
        print(f"  {name} log: {len(logged)} lines", *logged[:5], sep="\n    ", flush=True)
        return run


def cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def row(label: str, ours: float, base: float | None, digits: int = 1, target: str = "", ok: bool | None = None) -> None:
    ratio = f"{ours / base:.2f}" if base else "-"
    verdict = "" if ok is None else ("met" if ok else "MISSED")
    print(f"{label:<52} {cell(ours, digits):>10} {cell(base, digits):>10} {ratio:>7}  {target:<24} {verdict}".rstrip())


def breakdown(ours: Counter[str], base: Counter[str] | None) -> None:
    for who, found in (("", ours), ("bare Kopf: ", base or Counter())):
        for what, count in found.most_common(6):
            print(f"{'':<6}{count:>7}  {who}{what}")


def print_idle(size: int, ours: Run, base: Run | None) -> None:
    at_10k = size >= 10_000

    def figure(run: Run | None, attr: str) -> float | None:
        value = None if run is None else getattr(run, attr)
        return float(value.total()) if isinstance(value, Counter) else value

    def show(
        label: str, attr: str, digits: int, target: str = "", ok: Callable[[float], bool | None] | None = None
    ) -> None:
        value = getattr(ours, attr)
        mine = float(value.total()) if isinstance(value, Counter) else float(value)
        row(label, mine, figure(base, attr), digits, target, ok(mine) if ok else None)
        if isinstance(value, Counter):
            breakdown(value, None if base is None else getattr(base, attr))

    print(f"\nController at rest, {size} Assignments (default policy and resync; emulator access log counts writes)")
    print(f"{'figure':<52} {'Ringpilot':>10} {'bare Kopf':>10} {'ratio':>7}  target")
    show("first start: spawn to caught up (s)", "first_seconds", 1)
    show("  API writes during first start", "first_writes", 0)
    show("at rest: CPU, % of one core", "cpu_percent", 2, "<= 2 % at 10k", lambda v: v <= 2 if at_10k else None)
    show("at rest: RSS (MiB)", "rss_mib", 0)
    show("at rest: API writes", "rest_writes", 0, "0", lambda v: v == 0)
    show("restart: spawn to caught up (s)", "restart_seconds", 1, "< 30 s at 10k", lambda v: v < 30 if at_10k else None)
    show("  API writes during restart catch-up", "restart_writes", 0)


def sweep_in_process(size: int, namespaces: int) -> dict[str, float]:
    """Relist, a first cycle and a steady cycle (every Assignment due) on the fakes; run in a fresh process."""
    policy = load_policy(None)
    cluster, plane = FakeCluster(), FakePlane()
    for i in range(size):
        k = i % namespaces
        ring, ns, name = k % 5, f"ring-{k % 5}-ns{k:03d}", f"app-{i:06d}"
        plane.put(f"{ns}/{name}", Workload(repository=f"{REPO}/{name}"))
        body = spec(app=name, ring=ring, namespace=ns, criticality=CRITICALITIES[i % 4], drift={"mode": "Enforce"})
        cluster.add_assignment(name, body, namespace=ns)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sweeper = DriftSweeper(cluster, Planes({"kubernetes": plane}), MemoryLedger(), policy)  # type: ignore[arg-type]

    async def cycles() -> dict[str, float]:
        await sweeper.relist(NOW)
        first = await sweeper.cycle(NOW)
        cluster.calls.clear()
        plane.observe_calls.clear()
        events = len(cluster.events)
        longest = max(policy.remediation.check_interval_seconds.model_dump().values())
        wall, cpu = time.perf_counter(), time.process_time()
        steady = await sweeper.cycle(NOW + timedelta(seconds=longest + 1))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if steady.checked != size or steady.drifted or steady.errors:
            raise RuntimeError(f"steady cycle checked {steady.checked}/{size}, drifted {len(steady.drifted)}")
        calls = Counter(c.split()[0] for c in cluster.calls)
        return {
            "checked": steady.checked,
            "groups": steady.groups,
            "cpu": cpu,
            "wall": wall,
            "lists": calls["list"],
            "observes": len(plane.observe_calls),
            "writes": calls["patch"] + calls["create"] + len(cluster.events) - events,
            "first_writes": first.written,
            "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_fakes": before,
        }

    return asyncio.run(cycles())


def print_sweep(size: int, namespaces: int) -> None:
    small = 10_000 if size > 10_000 else max(1, size // 10)
    results = []
    for n in (size, small):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            results.append(pool.submit(sweep_in_process, n, namespaces).result())
    big, base = results
    intervals = load_policy(None).remediation.check_interval_seconds
    shortest = min(intervals.model_dump().values())
    production = min(CheckIntervals().model_dump().values())
    print(f"\nFull drift check, {size} Assignments in {namespaces} namespaces, rings 0-4, all criticalities, Enforce")
    print(
        "  SIMULATED input: the emulator on this machine is one Python process and cannot hold 100k objects, so the\n"
        "  real DriftSweeper runs on tests.remediation.inmemory (FakeCluster, FakePlane, MemoryLedger); calls are\n"
        "  counted by the fakes (no HTTP). Steady cycle: `now` past the longest interval, so every Assignment is due."
    )
    print(f"{'figure':<52} {f'at {size}':>10} {f'at {small}':>10} {'ratio':>7}  target")
    row("Assignments checked in the steady cycle", big["checked"], base["checked"], 0)
    row("  observation groups (plane, namespace)", big["groups"], base["groups"], 0)
    row("steady cycle: CPU seconds (process_time)", big["cpu"], base["cpu"], 2)
    row("steady cycle: wall seconds", big["wall"], base["wall"], 2)
    per_big, per_small = 1000 * big["cpu"] / size, 1000 * base["cpu"] / small
    linear = 0.67 <= per_big / per_small <= 1.5
    row("  CPU per Assignment (ms)", per_big, per_small, 3, "linear: ratio ~1", linear)
    for label, interval in (
        (f"default policy, shortest {shortest} s", shortest),
        (f"model default {production} s", production),
    ):
        share = 100 * big["cpu"] / interval
        row(f"  % of one core over {label}", share, 100 * base["cpu"] / interval, 1, "<= 100 % (1 core)", share <= 100)
    row("steady cycle: list calls (DeploymentTasks)", big["lists"], base["lists"], 0)
    row("steady cycle: observe calls", big["observes"], base["observes"], 0)
    row("steady cycle: write calls", big["writes"], base["writes"], 0, "0", big["writes"] == 0)
    row("first cycle: status writes (first check)", big["first_writes"], base["first_writes"], 0)
    row("peak RSS of the process (MiB)", big["rss"], base["rss"], 0)
    row("  of which before the sweep: the fakes (MiB)", big["rss_fakes"], base["rss_fakes"], 0)
    growth = "grows linearly with Assignments" if linear else "does NOT grow linearly with Assignments"
    print(f"CPU per Assignment at {size} / at {small}: {per_big / per_small:.2f}: the full check {growth}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--idle-sizes", default="1000,10000", help="Assignments held at rest, comma-separated")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="length of the at-rest window")
    parser.add_argument("--sweep-size", type=int, default=100_000, help="Assignments in the simulated full check")
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--workers", type=int, default=8, help="threads creating objects")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true", help="no bare Kopf operator in part 1")
    parser.add_argument(
        "--check-intervals",
        choices=("production", "shipped"),
        default="production",
        help="drift check intervals at rest: the domain's production ones (default) or the shipped dev policy's",
    )
    parser.add_argument("--skip-steps", action="store_true", help="no part 3")
    parser.add_argument("--tasks", type=int, default=200, help="concurrent DeploymentTasks in part 3")
    parser.add_argument(
        "--baseline-commit", default="8b3d62f", help="commit whose orchestration bench runs next to ours ('' for none)"
    )
    parser.add_argument("--chat-turns", type=int, default=12, help="turns per conversation in part 3 (0: no chat)")
    args = parser.parse_args(argv)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"Ringpilot scale benchmark: Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"kopf {version('kopf')}, load average {load}",
        flush=True,
    )
    if not args.skip_idle:
        for size in (int(s) for s in args.idle_sizes.split(",")):
            print(f"\nPart 1 at {size}: Ringpilot controller", flush=True)
            ours = at_rest(size, args, bare=False)
            base = None
            if not args.skip_baseline:
                print(f"Part 1 at {size}: bare Kopf operator baseline", flush=True)
                base = at_rest(size, args, bare=True)
            print(f"  drift check intervals at rest: {args.check_intervals}", flush=True)
            print_idle(size, ours, base)
    if not args.skip_sweep:
        print_sweep(args.sweep_size, args.namespaces)
    if not args.skip_steps:
        print_step_costs(args.tasks, args.baseline_commit, args.chat_turns, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
