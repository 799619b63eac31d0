"""Child processes of the dev stack: rotated logs, death with the parent, and finding an earlier run's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from controller.devkit.processes import ProcessGroup, holders


def wait_gone(pid: int, timeout_seconds: float = 15) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


def test_a_chatty_child_s_log_is_rotated_keeping_whole_lines(tmp_path: Path) -> None:
    group = ProcessGroup(log_max_bytes=2000, log_backups=2)
    log = tmp_path / "chatty.log"
    script = "for i in range(400): print(f'line {i:04d} ' + 'x' * 40)"
    child = group.spawn("chatty", [sys.executable, "-c", script], {}, log)
    child.process.wait(30)
    group.stop_all()
    files = sorted(tmp_path.glob("chatty.log*"))
    assert [f.name for f in files] == ["chatty.log", "chatty.log.1", "chatty.log.2"]
    assert all(f.stat().st_size <= 2000 for f in files)
    kept = [line for f in reversed(files[1:]) for line in f.read_text().splitlines()] + log.read_text().splitlines()
    assert kept[-1] == "line 0399 " + "x" * 40
    assert all(line.startswith("line ") and line.endswith("x" * 40) for line in kept)
    numbers = [int(line.split()[1]) for line in kept]
    assert numbers == list(range(numbers[0], 400))  # the newest lines, none torn or lost between files


PARENT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from controller.devkit.processes import ProcessGroup
    group = ProcessGroup(owner=sys.argv[1])
    child = group.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"], {}, Path(sys.argv[2]))
    print(child.process.pid, flush=True)
    import time; time.sleep(600)
""")


def test_children_die_with_a_killed_parent_and_carry_their_owner(tmp_path: Path) -> None:
    owner = str(tmp_path / "run")
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, owner, str(tmp_path / "sleeper.log")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert set(holders(owner)) == {child}
    assert holders(str(tmp_path / "another-run")) == {}
    parent.kill()
    parent.wait()
    assert wait_gone(child), "the child outlived its killed parent"
    assert holders(owner) == {}


def test_holders_ignores_ourselves(tmp_path: Path) -> None:
    os.environ["RINGPILOT_DEV_OWNER"] = str(tmp_path)
    try:
        assert holders(str(tmp_path)) == {}
    finally:
        del os.environ["RINGPILOT_DEV_OWNER"]


GRANDPARENT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from controller.devkit.processes import ProcessGroup
    group = ProcessGroup()
    # A child that ignores SIGTERM and forks a grandchild, as a worker whose shutdown hangs would.
    script = (
        "import os, signal, time\\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
        "pid = os.fork()\\n"
        "print(os.getpid() if pid else os.getpid(), flush=True)\\n"
        "time.sleep(600)\\n"
    )
    child = group.spawn("stubborn", [sys.executable, "-c", script], {}, Path(sys.argv[1]))
    print(child.process.pid, flush=True)
    import time; time.sleep(600)
""")


def test_a_stubborn_child_and_its_own_children_are_reaped_after_a_kill_9_of_the_parent(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    parent = subprocess.Popen([sys.executable, "-c", GRANDPARENT, str(log)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    deadline = time.monotonic() + 30
    while (not log.exists() or len(log.read_text().split()) < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    family = {int(pid) for pid in log.read_text().split()}
    assert child in family and len(family) == 2
    parent.kill()
    parent.wait()
    assert all(wait_gone(pid, 20) for pid in family), "a child or grandchild outlived its killed parent"
