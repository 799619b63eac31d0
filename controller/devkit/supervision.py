"""Restarting the dev stack's children when they crash: each after a backoff, with a line naming it.

`Supervisor.check` is called from `ringpilot dev`'s main loop. A unit that exited is restarted after
`first_delay_seconds`, doubling per crash up to `max_delay_seconds`; one that then ran for
`stable_seconds` starts again from the first delay. The units are generic: a child process of a
`ProcessGroup` (`ChildUnit`) or an embedded server (`ServerUnit`), so a new child is one more unit.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from controller.devkit.processes import Child, ProcessGroup
from controller.devkit.serverchild import ServerChild


class Unit(Protocol):
    """One supervised thing: its name, its log, whether it exited, how to start it again."""

    @property
    def name(self) -> str: ...

    @property
    def log_path(self) -> Path | None: ...

    def exited(self) -> int | None: ...

    def uptime_seconds(self) -> float: ...

    def restart(self) -> None: ...


@dataclass
class ChildUnit:
    group: ProcessGroup
    child: Child

    @property
    def name(self) -> str:
        return self.child.name

    @property
    def log_path(self) -> Path | None:
        return self.child.log_path

    def exited(self) -> int | None:
        return self.child.process.poll()

    def uptime_seconds(self) -> float:
        return time.monotonic() - self.child.started_at

    def restart(self) -> None:
        self.group.restart(self.child)


@dataclass
class ServerUnit:
    server: ServerChild
    timeout_seconds: float = 60.0

    @property
    def name(self) -> str:
        return self.server.name

    @property
    def log_path(self) -> Path | None:
        return self.server.log_path

    def exited(self) -> int | None:
        return self.server.exited()

    def uptime_seconds(self) -> float:
        return time.monotonic() - self.server.started_at

    def restart(self) -> None:
        self.server.restart(self.timeout_seconds)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class _Pending:
    due: float
    delay_seconds: float


@dataclass
class Supervisor:
    units: list[Unit]
    first_delay_seconds: float = 1.0
    max_delay_seconds: float = 30.0
    stable_seconds: float = 60.0
    report: Callable[[str], None] = _stderr
    restarts: dict[str, int] = field(default_factory=dict)
    _delays: dict[str, float] = field(default_factory=dict)
    _pending: dict[str, _Pending] = field(default_factory=dict)

    def add(self, unit: Unit) -> None:
        self.units.append(unit)

    def check(self, now: float | None = None) -> None:
        """Schedule a restart for each unit that exited, and carry out the restarts that are due."""
        now = time.monotonic() if now is None else now
        for unit in self.units:
            pending = self._pending.get(unit.name)
            if pending is None:
                code = unit.exited()
                if code is not None:
                    self._schedule(unit, now, f"{unit.name} exited with code {code}")
            elif now >= pending.due:
                self._restart(unit, now)

    def _schedule(self, unit: Unit, now: float, why: str, *, failed: bool = False) -> None:
        previous = self._delays.get(unit.name)
        if previous is None or (not failed and unit.uptime_seconds() >= self.stable_seconds):
            delay = self.first_delay_seconds
        else:
            delay = min(previous * 2, self.max_delay_seconds)
        self._delays[unit.name] = delay
        self._pending[unit.name] = _Pending(now + delay, delay)
        log = f"; log {unit.log_path}" if unit.log_path else ""
        self.report(f"ringpilot dev: {why}; restarting it in {delay:g}s{log}")

    def _restart(self, unit: Unit, now: float) -> None:
        del self._pending[unit.name]
        try:
            unit.restart()
        except Exception as error:  # a server that cannot start yet: try again later, longer
            self._schedule(unit, now, f"{unit.name} did not restart ({str(error).splitlines()[0]})", failed=True)
            return
        self.restarts[unit.name] = self.restarts.get(unit.name, 0) + 1
        self.report(f"ringpilot dev: {unit.name} restarted (restart {self.restarts[unit.name]})")
