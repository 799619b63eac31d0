"""`ringpilot dev`: the whole system from one command, state kept across restarts, nothing left behind.

It supervises: children die with it even after a `kill -9`, a crashed child (PostgreSQL included) is
restarted with a line naming it, a start over an earlier run's live processes is refused naming them,
`RINGPILOT_DATA_DIR` is honoured, JSON logs parse line by line and each child sees only its secrets. The
emulator's final snapshot survives the second SIGTERM that a dying `ringpilot dev` brings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.services import scratch_root

pytestmark = pytest.mark.e2e


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory outside pytest's basetemp, which another session's start re-chmods to 0700 under the
    unprivileged PostgreSQL (see tests/fixtures/services.py)."""
    path = Path(tempfile.mkdtemp(prefix="ringpilot-dev-test-", dir=scratch_root()))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start(data_dir: Path | None, **extra_env: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGPILOT_")} | extra_env
    flags = ["--data-dir", str(data_dir)] if data_dir is not None else []
    return subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "dev", *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_up(proc: subprocess.Popen[str], timeout_seconds: float = 60) -> str:
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if "Stop: Ctrl-C" in line:
            return "".join(seen)
    raise AssertionError("ringpilot dev did not come up:\n" + "".join(seen))


def kubectl(kubeconfig: Path, *args: str) -> str:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=30, check=True
    ).stdout


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (the controller, worker, emulator, PostgreSQL and Redis)."""
    ps = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in ps.splitlines():
        child, parent = (int(x) for x in line.split())
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """The processes of `pids` that still run (a zombie waiting for its reaper has ended)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            running.add(pid)
    return running


def whoami(url: str, token: str, timeout_seconds: float = 60) -> dict[str, object]:
    """The gateway's answer for `token`, waiting for the gateway to come up."""
    request = urllib.request.Request(f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                answer: dict[str, object] = json.loads(response.read())
                return answer
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(60)


def test_dev_runs_everything_keeps_state_and_leaves_nothing_behind(scratch: Path) -> None:
    data_dir = scratch / "state"
    kubeconfig = data_dir / "kubeconfig"
    first = start(data_dir)
    try:
        banner = wait_up(first)
        assert f"export KUBECONFIG={kubeconfig}" in banner
        found = re.search(r"Chat gateway: (http://127\.0\.0\.1:\d+)", banner)
        assert found, banner
        token_path = data_dir / "tokens" / "dev-publisher"
        assert token_path.stat().st_mode & 0o777 == 0o600
        assert whoami(found.group(1), token_path.read_text().strip())["user"] == "dev-publisher"
        listing = kubectl(kubeconfig, "get", "ringpilot", "-A")
        for name in ("release-chat", "web-1-4-2", "payments-2-0-0", "payments-ring-0", "payments-ring-0-fix"):
            assert name in listing
        deadline = time.monotonic() + 60  # the controller opens the CAB record of the risky sample task
        while "payments-2-0-0-cab" not in kubectl(kubeconfig, "get", "chg") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "payments-2-0-0-cab" in kubectl(kubeconfig, "get", "chg")
        assert "PHASE" in listing and "AGE" in listing
        rings = kubectl(kubeconfig, "get", "ns", "-l", "ringpilot.dev/ring", "-o", "name").split()
        assert len(rings) == 5
        kubectl(kubeconfig, "create", "namespace", "kept-across-restarts")
        started = descendants(first.pid)
        assert len(started) >= 5, started

        second = start(data_dir)
        assert second.wait(60) == 2
        assert second.stdout is not None and "is in use by another process" in second.stdout.read()
        assert kubeconfig.exists()
    finally:
        assert stop(first) == 0
    assert alive(started) == set()

    again = start(data_dir)
    try:
        wait_up(again)
        started = descendants(again.pid)
        assert "kept-across-restarts" in kubectl(kubeconfig, "get", "ns", "kept-across-restarts", "-o", "name")
        assert kubectl(kubeconfig, "get", "conv", "release-chat", "-o", "name").strip()
    finally:
        assert stop(again) == 0
    assert alive(started) == set()


def wait_until(probe: Callable[[], object], what: str, timeout_seconds: float = 60) -> object:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_seconds}s waiting for {what}")


class Output:
    """The rest of `ringpilot dev`'s output, read by a thread after the banner."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True).start()

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def children_named(dev: int) -> dict[str, int]:
    """The direct children of `ringpilot dev` by role: postgres, redis-server, emulator, controller, worker."""
    found = {}
    for pid in descendants(dev):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != dev:
            continue
        words = [w.decode() for w in command if w]
        comm = Path(f"/proc/{pid}/comm").read_text().strip()  # redis-server rewrites its command line
        role = comm if comm in ("postgres", "redis-server") else words[-1]
        found["emulator" if "controller.devkit.emulator" in words else role] = pid
    return found


def environ(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)


def test_a_start_over_live_processes_of_an_earlier_run_is_refused_naming_them(scratch: Path) -> None:
    data_dir = (scratch / "state").absolute()
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        env={**os.environ, "RINGPILOT_DEV_OWNER": str(data_dir)},  # what a child of an earlier run carries
    )
    refused = start(data_dir)
    try:
        assert refused.wait(60) == 2
        assert refused.stdout is not None
        said = refused.stdout.read()
        assert f"processes of an earlier run still hold {data_dir}" in said
        assert f"pid {orphan.pid}:" in said and f"kill {orphan.pid}" in said
        assert not (data_dir / "kubeconfig").exists()
    finally:
        if refused.poll() is None:  # it started after all: stop it and what it started
            stop(refused)
        orphan.kill()
        orphan.wait()


def test_dev_supervises_its_children_and_none_outlives_a_kill_9(scratch: Path) -> None:
    data_dir = scratch / "from-env"
    kubeconfig = data_dir / "kubeconfig"
    secrets = {"RINGPILOT_ANTHROPIC_API_KEY": "sk-ant-planted-0123456789", "SOME_SERVICE_TOKEN": "planted"}
    env = {"RINGPILOT_DATA_DIR": str(data_dir), "RINGPILOT_LOG_FORMAT": "json", "RINGPILOT_LLM_PROVIDER": "offline"}
    dev = start(None, **env, **secrets, RINGPILOT_RESYNC_INTERVAL_SECONDS="2")
    killed = False
    try:
        assert f"export KUBECONFIG={kubeconfig}" in wait_up(dev)  # RINGPILOT_DATA_DIR, no --data-dir
        out = Output(dev)
        children = children_named(dev.pid)
        assert {"postgres", "redis-server", "emulator", "controller", "worker"} <= set(children), children

        # Each child sees the secrets it uses and no other.
        worker, controller, emulator = (environ(children[n]) for n in ("worker", "controller", "emulator"))
        assert worker["RINGPILOT_ANTHROPIC_API_KEY"] == secrets["RINGPILOT_ANTHROPIC_API_KEY"]
        assert "RINGPILOT_ANTHROPIC_API_KEY" not in controller and "RINGPILOT_ANTHROPIC_API_KEY" not in emulator
        assert all("SOME_SERVICE_TOKEN" not in e for e in (worker, controller, emulator))
        assert "RINGPILOT_DATABASE_URL" in controller and "RINGPILOT_DATABASE_URL" not in emulator

        # A crashed worker, then a crashed PostgreSQL, are restarted with a line naming each.
        os.kill(children["worker"], signal.SIGKILL)
        wait_until(lambda: out.has("worker exited with code -9; restarting it in"), "the worker's crash line")
        wait_until(lambda: out.has("worker restarted"), "the worker's restart")
        os.kill(children["postgres"], signal.SIGKILL)
        wait_until(lambda: out.has("postgres exited with code -9; restarting it in"), "PostgreSQL's crash line")
        wait_until(lambda: out.has("postgres restarted"), "PostgreSQL's restart", 90)
        assert dev.poll() is None
        kubectl(kubeconfig, "create", "namespace", "made-before-the-kill")

        # Every line the controller and the worker wrote is one JSON object, and the controller's resyncs
        # (every 2 s here, for each object) leave no line at INFO.
        records = {}
        for name in ("controller", "worker"):
            lines = (data_dir / "logs" / f"{name}.log").read_text().splitlines()
            records[name] = [json.loads(line) for line in lines]
            assert records[name] and all(isinstance(r, dict) for r in records[name]), name
        routine = [r for r in records["controller"] if r["level"] == "INFO" and r["message"].startswith("Timer ")]
        assert routine == []

        everything = descendants(dev.pid)
        dev.kill()
        dev.wait()
        killed = True
        wait_until(lambda: not alive(everything), "every child of the killed ringpilot dev to exit", 30)
    finally:
        if not killed:
            stop(dev)

    again = start(None, **env)  # no orphan is left to overwrite the new stack's state
    try:
        wait_up(again)
        started = descendants(again.pid)
        assert "made-before-the-kill" in kubectl(kubeconfig, "get", "ns", "made-before-the-kill", "-o", "name")
    finally:
        assert stop(again) == 0
    assert alive(started) == set()


#: The emulator's command, with one more SIGTERM sent to it as it starts stopping (as when `ringpilot dev`
#: dies: the kernel's parent-death signal and the reaper's SIGTERM come within a millisecond of each other).
SIGTERM_AGAIN_WHILE_STOPPING = """
import asyncio, os, signal, sys
from controller.devkit.emulator.__main__ import main
from controller.devkit.emulator.server import EmulatorServer

original_stop = EmulatorServer.stop

async def stop_under_a_second_sigterm(self):
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.sleep(0.2)  # the signal is delivered before the final snapshot is written
    await original_stop(self)

EmulatorServer.stop = stop_under_a_second_sigterm
sys.exit(main(sys.argv[1:]))
"""


def test_a_second_sigterm_while_the_emulator_stops_loses_no_acknowledged_write(scratch: Path) -> None:
    kubeconfig, state = scratch / "kubeconfig", scratch / "cluster.json"
    argv = ["--port", "0", "--kubeconfig", str(kubeconfig), "--state", str(state)]
    emulator = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_AGAIN_WHILE_STOPPING, *argv], stdout=subprocess.PIPE, text=True
    )
    try:
        assert emulator.stdout is not None and emulator.stdout.readline().startswith("http://127.0.0.1:")
        kubectl(kubeconfig, "create", "namespace", "acknowledged")
    finally:
        emulator.send_signal(signal.SIGTERM)
        code = emulator.wait(timeout=30)
    assert code == 0  # not killed by the second SIGTERM
    names = [o["object"]["metadata"]["name"] for o in json.loads(state.read_text())["objects"]]
    assert "acknowledged" in names
