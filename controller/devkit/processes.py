"""Child processes started, restarted and stopped as one group (the dev stack and the e2e harness).

Each child runs in its own session so a Ctrl-C reaches only us, asks Linux to SIGTERM it when we die
(`die_with_parent`, so even a `kill -9` of the parent leaves no orphan), and carries `RINGPILOT_DEV_OWNER`
(the group's owner, e.g. the data directory) so a later run can find what an earlier one left
(`holders`). A reaper process (reaper.py) holds every child's process group and kills them when we
exit by any means, grandchildren included. Its output is pumped into a rotated log file
(controller/devkit/logpump.py). `stop_all` sends SIGTERM to every child's process group, waits, then
SIGKILLs what is left.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from controller.devkit.logpump import DEFAULT_LOG_BACKUPS, DEFAULT_LOG_MAX_BYTES, RotatingLog

#: Names the run a child belongs to (set in each child's environment by its `ProcessGroup`).
OWNER_ENV = "RINGPILOT_DEV_OWNER"
_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` asking Linux to send `sig` to the child when the thread that spawns it exits."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def set_death_signal() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_death_signal


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    log: RotatingLog | None = None
    started_at: float = field(default_factory=time.monotonic)


@dataclass
class ProcessGroup:
    children: list[Child] = field(default_factory=list)
    #: Stamped into every child's environment as `RINGPILOT_DEV_OWNER` ("" stamps nothing).
    owner: str = ""
    log_max_bytes: int = DEFAULT_LOG_MAX_BYTES
    log_backups: int = DEFAULT_LOG_BACKUPS
    reaper: subprocess.Popen[str] | None = None

    def spawn(self, name: str, argv: list[str], env: dict[str, str], log_path: Path | None = None) -> Child:
        child = Child(name, self._popen(argv, env, log_path), log_path, list(argv), dict(env))
        child.log = self._pump(child)
        self.children.append(child)
        return child

    def _tell_reaper(self, verb: str, pgid: int) -> None:
        if verb == "del" and self.reaper is None:
            return
        if self.reaper is None or self.reaper.poll() is not None:
            self.reaper = subprocess.Popen(
                [sys.executable, "-m", "controller.devkit.reaper"],
                stdin=subprocess.PIPE,
                text=True,
                start_new_session=True,  # outlives us, to kill what we leave
            )
        assert self.reaper.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.reaper.stdin.write(f"{verb} {pgid}\n")
            self.reaper.stdin.flush()

    def _close_reaper(self) -> None:
        if self.reaper is not None and self.reaper.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.reaper.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.reaper.wait(10)
        self.reaper = None

    def _popen(self, argv: list[str], env: dict[str, str], log_path: Path | None) -> subprocess.Popen[bytes]:
        stamped = {**env, OWNER_ENV: self.owner} if self.owner else env
        process = subprocess.Popen(
            argv,
            env=stamped,
            stdout=subprocess.PIPE if log_path else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group (pgid = pid), which the reaper holds
            preexec_fn=die_with_parent(),
        )
        self._tell_reaper("add", process.pid)
        return process

    def _pump(self, child: Child) -> RotatingLog | None:
        if child.log_path is None or child.process.stdout is None:
            return None
        log = RotatingLog(child.log_path, self.log_max_bytes, self.log_backups)
        log.pump(child.process.stdout, child.name)
        return log

    def restart(self, child: Child) -> Child:
        """Start `child` again with the same command line, environment and log file (after it exited)."""
        self.stop(child)
        child.process = self._popen(child.argv, child.env, child.log_path)
        child.log = self._pump(child)
        child.started_at = time.monotonic()
        return child

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def exited(self) -> list[Child]:
        return [c for c in self.children if c.process.poll() is not None]

    def stop(self, child: Child, timeout_seconds: float = 10.0) -> None:
        if child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout_seconds)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()
        self._tell_reaper("del", child.process.pid)
        if child.log is not None:
            child.log.close()
            child.log = None

    def stop_all(self, timeout_seconds: float = 10.0) -> None:
        """Stop children in reverse start order."""
        for child in reversed(self.children):
            self.stop(child, timeout_seconds)
        self.children.clear()
        self._close_reaper()


def holders(owner: str, exclude: set[int] | None = None) -> dict[int, str]:
    """Live processes whose environment names `owner` as their run: pid -> command line (Linux /proc)."""
    marker = f"{OWNER_ENV}={owner}".encode()
    skip = {os.getpid(), *(exclude or set())}
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
    return found


def wait_for_file(path: Path, timeout_seconds: float, child: Child | None = None) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not path.exists():
        if child is not None and child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited with code {child.process.returncode}; see {child.log_path}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout_seconds}s")
        time.sleep(0.05)
