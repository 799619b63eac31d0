"""`ringpilot dev`: the whole system from one command, state kept across restarts, nothing left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def start(data_dir: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGPILOT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "dev", "--data-dir", str(data_dir)],
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
    gone = set()
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            gone.add(pid)
    return pids - gone


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


def test_dev_runs_everything_keeps_state_and_leaves_nothing_behind(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
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
        for name in ("release-chat", "web-1-4-2", "payments-2-0-0-cab", "payments-ring-0", "payments-ring-0-fix"):
            assert name in listing
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
