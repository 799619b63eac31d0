"""The reaper of a `ProcessGroup`: kills its children's process groups once the group's owner is gone.

`python -m controller.devkit.reaper` reads `add PGID` / `del PGID` lines on stdin from its owner. When
stdin ends (the owner exited, even by `kill -9`), it sends SIGTERM to each process group it still
holds, waits `GRACE_SECONDS`, then SIGKILLs them, so no grandchild (a dramatiq worker process) is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from typing import IO

GRACE_SECONDS = 5.0


def _signal_all(groups: set[int], sig: signal.Signals) -> set[int]:
    """Send `sig` to each group; the groups that still exist."""
    alive = set()
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
            alive.add(pgid)
    return alive


def reap(commands: IO[str], grace_seconds: float = GRACE_SECONDS) -> None:
    groups: set[int] = set()
    for line in commands:
        verb, _, pgid = line.strip().partition(" ")
        if pgid.isdigit():
            (groups.add if verb == "add" else groups.discard)(int(pgid))
    deadline = time.monotonic() + grace_seconds
    groups = _signal_all(groups, signal.SIGTERM)
    while groups and time.monotonic() < deadline:
        time.sleep(0.1)
        groups = _signal_all(groups, 0)  # type: ignore[arg-type]  # signal 0: does it still exist?
    _signal_all(groups, signal.SIGKILL)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the owner, who then closes our stdin
    reap(sys.stdin)
