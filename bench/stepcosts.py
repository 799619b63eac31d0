"""Part 3 of bench/scale.py: what a DeploymentTask's steps cost, now and at a baseline commit, in one run.

Both sides run bench/orchestration.py's throughput test (N low-risk 3-ring tasks at once on the simulated
plane, zero soak, the real controller and worker processes): this checkout in-process, the baseline
commit's own script from a git worktree of it, with this venv (its spawned processes import its tree).
Then bench/chat.py for chat turn latency at 1 and 20 conversations against the local Messages API.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import orchestration

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: perf.md's floor for a 3-ring, zero-soak task with today's features (estimates, not measurements).
FLOOR_WRITES, FLOOR_EVENTS, FLOOR_SQL = 25, 22, 50
#: The lines of bench/orchestration.py's table, by the figure they print (older commits print these too).
ORCHESTRATION_LINES = {
    "tasks_per_second": "  tasks per second",
    "overhead_per_step_seconds": "  orchestration overhead per step, all at once (s)",
    "solo_latency_seconds": "  one task alone: latency (s)",
    "solo_overhead_per_step_seconds": "  one task alone: overhead per step (s)",
    "solo_api_writes": "  one task alone: API writes",
}
CHAT_LINES = {
    "p50_1": "turn latency, Messages API (500 ms model), 1 conversation, p50 (ms)",
    "p99_1": "turn latency, Messages API (500 ms model), 1 conversation, p99 (ms)",
    "p50_20": "turn latency, Messages API (500 ms model), 20 conversations, p50 (ms)",
    "p99_20": "turn latency, Messages API (500 ms model), 20 conversations, p99 (ms)",
}


def parse(text: str, lines: dict[str, str]) -> dict[str, float]:
    """The last number on each line of a printed table that starts with one of `lines`."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        for key, label in lines.items():
            if line.startswith(label):
                found[key] = float(line.split()[-1].split("/")[-1])
    return found


def at_commit(commit: str, tasks: int) -> dict[str, float]:
    """bench/orchestration.py of `commit` from a git worktree of it: its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        git = ["git", "-C", str(REPO), "worktree"]
        subprocess.run([*git, "add", "--detach", str(tree), commit], check=True, capture_output=True)
        try:
            out = subprocess.run(
                [sys.executable, "bench/orchestration.py", "--tasks", str(tasks), "--no-baselines", "--fleet", "1000"],
                cwd=tree,
                env={**os.environ, "PYTHONPATH": str(tree)},  # its own tree, not this venv's editable install
                capture_output=True,
                text=True,
                check=True,
                timeout=3600,
            )
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], check=False, capture_output=True)
    return parse(out.stdout, ORCHESTRATION_LINES)


def chat(turns: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(HERE / "chat.py"), "--turns", str(turns), "--skip-baseline", "--messages", "10000"],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    return parse(out.stdout, CHAT_LINES)


def print_step_costs(
    tasks: int,
    baseline_commit: str,
    chat_turns: int,
    row: Callable[..., None],
) -> None:
    """Run both sides and print the table (`row` is bench/scale.py's: label, ours, baseline, digits, target, ok)."""
    print(f"\nPart 3: {tasks} DeploymentTasks at once and one alone; baseline: commit {baseline_commit}", flush=True)
    base = at_commit(baseline_commit, tasks) if baseline_commit else {}
    ours = orchestration.throughput(tasks, {0: 2, 1: 4, 2: 8})
    print(f"{'figure':<52} {'now':>10} {'baseline':>10} {'ratio':>7}  target")
    tps = ours["tasks_per_second"]
    row(
        f"tasks/s, {tasks} at once",
        tps,
        base.get("tasks_per_second"),
        2,
        ">= 10x baseline",
        tps >= 10 * base["tasks_per_second"] if base else None,
    )
    row(
        "tasks/s, one alone (1 / latency)",
        1 / ours["solo_latency_seconds"],
        1 / base["solo_latency_seconds"] if base else None,
        2,
    )
    row(
        "one task alone, end to end (s)",
        ours["solo_latency_seconds"],
        base.get("solo_latency_seconds"),
        2,
        "<= 1 s",
        ours["solo_latency_seconds"] <= 1.0,
    )
    solo_step, busy_step = ours["solo_overhead_per_step_seconds"], ours["overhead_per_step_seconds"]
    row("overhead per step, one alone (s)", solo_step, base.get("solo_overhead_per_step_seconds"), 3)
    row(
        f"overhead per step, {tasks} at once (s)",
        busy_step,
        base.get("overhead_per_step_seconds"),
        3,
        "<= 2x one alone",
        busy_step <= 2 * solo_step,
    )
    row(f"  {tasks} at once / one alone (x)", busy_step / solo_step, None, 2)
    writes = ours["solo_api_writes"]
    row(
        "API writes per task (incl. its Assignments')",
        writes,
        base.get("solo_api_writes"),
        0,
        f"<= 2x floor ({2 * FLOOR_WRITES})",
        writes <= 2 * FLOOR_WRITES,
    )
    row(f"  against the floor (~{FLOOR_WRITES}) (x)", writes / FLOOR_WRITES, None, 2)
    row(
        f"watch events per task (writes to our kinds; floor ~{FLOOR_EVENTS})", ours["solo_writes_to_our_kinds"], None, 0
    )
    row(f"SQL statements per task (floor ~{FLOOR_SQL})", ours["solo_sql_statements"], None, 0)
    print(
        f"Growth: at {tasks} tasks at once a step costs {busy_step / solo_step:.2f}x what it costs alone; writes, "
        "watch events and SQL per task do not depend on how many tasks run (each task's own objects only)."
    )
    if chat_turns:
        print("\nChat turns, the local Messages API thinking 500 ms (bench/chat.py)", flush=True)
        turns = chat(chat_turns)
        print(f"{'figure':<52} {'value':>10} {'1 conv':>10} {'ratio':>7}  target")
        row("chat p50, 1 conversation (ms)", turns["p50_1"], None, 0)
        row("chat p99, 1 conversation (ms)", turns["p99_1"], None, 0)
        ratio_ok = turns["p50_20"] <= 2 * turns["p50_1"]
        row("chat p50, 20 conversations (ms)", turns["p50_20"], turns["p50_1"], 0, "<= 2x one alone", ratio_ok)
        row("chat p99, 20 conversations (ms)", turns["p99_20"], turns["p99_1"], 0)
