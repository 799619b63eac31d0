"""Child processes started and stopped as one group (the dev stack and the e2e harness).

Each child runs in its own session so a Ctrl-C reaches only us; `stop_all` sends SIGTERM to
every child's process group, waits, then SIGKILLs what is left, so nothing outlives us.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None


@dataclass
class ProcessGroup:
    children: list[Child] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], env: dict[str, str], log_path: Path | None = None) -> Child:
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
        process = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        if log_path:
            log.close()  # type: ignore[union-attr]
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop(self, child: Child, timeout_seconds: float = 10.0) -> None:
        if child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout_seconds)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()

    def stop_all(self, timeout_seconds: float = 10.0) -> None:
        """Stop children in reverse start order."""
        for child in reversed(self.children):
            self.stop(child, timeout_seconds)
        self.children.clear()


def wait_for_file(path: Path, timeout_seconds: float, child: Child | None = None) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not path.exists():
        if child is not None and child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited with code {child.process.returncode}; see {child.log_path}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout_seconds}s")
        time.sleep(0.05)
