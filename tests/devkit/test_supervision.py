"""Supervision of the dev stack's children: a crash is restarted after a backoff, with a line naming it."""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from controller.devkit.processes import ProcessGroup
from controller.devkit.supervision import ChildUnit, Supervisor


@dataclass
class Flaky:
    """A unit that exits when told and fails its first `failures` restarts."""

    name: str = "worker"
    log_path: Path | None = Path("/tmp/worker.log")
    code: int | None = None
    failures: int = 0
    ran_seconds: float = 0.0
    restarted: int = 0
    calls: list[str] = field(default_factory=list)

    def exited(self) -> int | None:
        return self.code

    def uptime_seconds(self) -> float:
        return self.ran_seconds

    def restart(self) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("address in use\nmore detail")
        self.code = None
        self.restarted += 1


def supervisor(unit: Flaky, lines: list[str]) -> Supervisor:
    return Supervisor([unit], first_delay_seconds=1, max_delay_seconds=8, stable_seconds=60, report=lines.append)


def test_a_crash_is_named_and_restarted_after_the_first_delay() -> None:
    lines: list[str] = []
    unit = Flaky()
    watch = supervisor(unit, lines)
    watch.check(100.0)
    assert lines == []
    unit.code = -9
    watch.check(100.0)
    assert lines == ["ringpilot dev: worker exited with code -9; restarting it in 1s; log /tmp/worker.log"]
    watch.check(100.5)
    assert unit.restarted == 0
    watch.check(101.0)
    assert unit.restarted == 1
    assert lines[-1] == "ringpilot dev: worker restarted (restart 1)"


def test_repeated_crashes_back_off_doubling_up_to_the_cap_and_a_stable_run_resets_it() -> None:
    lines: list[str] = []
    unit = Flaky()
    watch = supervisor(unit, lines)
    now, delays = 0.0, []
    for _ in range(6):
        unit.code = 1
        watch.check(now)
        delays.append(lines[-1].split("restarting it in ")[1].split("s;")[0])
        now += 100
        watch.check(now)
    assert delays == ["1", "2", "4", "8", "8", "8"]
    unit.ran_seconds = 120  # this time it ran for a while before crashing
    unit.code = 1
    watch.check(now)
    assert "restarting it in 1s" in lines[-1]


def test_a_restart_that_fails_is_tried_again_later_with_a_longer_delay() -> None:
    lines: list[str] = []
    unit = Flaky(name="postgres", failures=2, ran_seconds=600)
    watch = supervisor(unit, lines)
    unit.code = -9
    watch.check(0.0)
    watch.check(1.0)
    assert (
        lines[-1]
        == "ringpilot dev: postgres did not restart (address in use); restarting it in 2s; log /tmp/worker.log"
    )
    watch.check(3.0)
    assert "restarting it in 4s" in lines[-1]
    watch.check(7.0)
    assert unit.restarted == 1 and lines[-1] == "ringpilot dev: postgres restarted (restart 1)"


def test_a_child_process_that_is_killed_comes_back_with_its_command_and_log(tmp_path: Path) -> None:
    group = ProcessGroup(owner=str(tmp_path))
    log = tmp_path / "logs" / "sleeper.log"
    child = group.spawn(
        "sleeper", [sys.executable, "-c", "print('up', flush=True); import time; time.sleep(60)"], {}, log
    )
    lines: list[str] = []
    watch = Supervisor([ChildUnit(group, child)], first_delay_seconds=0, report=lines.append)

    def wait_for_ups(count: int) -> None:
        deadline = time.monotonic() + 30
        while (not log.exists() or log.read_text().count("up") < count) and time.monotonic() < deadline:
            time.sleep(0.05)

    try:
        wait_for_ups(1)
        first = child.process.pid
        child.process.send_signal(signal.SIGKILL)
        child.process.wait()
        watch.check()
        watch.check()
        assert child.process.pid != first and child.process.poll() is None
        wait_for_ups(2)
        assert log.read_text().splitlines() == ["up", "up"]
        assert lines == [
            f"ringpilot dev: sleeper exited with code -9; restarting it in 0s; log {log}",
            "ringpilot dev: sleeper restarted (restart 1)",
        ]
    finally:
        group.stop_all()
