"""The reaper kills the process groups it still holds once its owner's pipe closes, and spares released ones."""

from __future__ import annotations

import io
import signal
import subprocess
import sys

from controller.devkit.reaper import reap


def sleeper(ignore_term: bool = False) -> subprocess.Popen[bytes]:
    code = "import signal, time\n" + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else "")
    return subprocess.Popen(
        [sys.executable, "-c", code + "print(1, flush=True)\ntime.sleep(600)"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )


def test_held_groups_are_terminated_then_killed_and_released_ones_are_left_alone() -> None:
    polite, stubborn, released = sleeper(), sleeper(ignore_term=True), sleeper()
    for proc in (polite, stubborn, released):
        assert proc.stdout is not None and proc.stdout.readline()  # running, handlers installed
    try:
        commands = f"add {polite.pid}\nadd {stubborn.pid}\nadd {released.pid}\ndel {released.pid}\nnonsense\n"
        reap(io.StringIO(commands), grace_seconds=1.0)
        assert polite.wait(10) == -signal.SIGTERM
        assert stubborn.wait(10) == -signal.SIGKILL
        assert released.poll() is None
    finally:
        for proc in (polite, stubborn, released):
            proc.kill()
            proc.wait()
