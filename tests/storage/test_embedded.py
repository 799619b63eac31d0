"""Embedded PostgreSQL and Redis: start, stop, restart with data kept, and no process left behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from controller.devkit.embedded import EmbeddedError, EmbeddedServices, postgres_bin_dir, redis_server_path
from tests.fixtures.services import scratch_root

ROOT = Path(__file__).parents[2]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ringpilot-test-embedded-", dir=scratch_root()))
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


def process_table() -> dict[int, tuple[int, str]]:
    """pid → (ppid, command line), from `ps`."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        pid, ppid, args = line.split(None, 2) if len(line.split(None, 2)) == 3 else [*line.split(), ""]
        table[int(pid)] = (int(ppid), args)
    return table


def tree(root: int) -> set[int]:
    """`root` and all its descendants, per `ps`."""
    table = process_table()
    found = {root} if root in table else set()
    changed = True
    while changed:
        more = {pid for pid, (ppid, _) in table.items() if ppid in found} - found
        found |= more
        changed = bool(more)
    return found


def server_pids(services: EmbeddedServices) -> set[int]:
    assert services.postgres.process is not None
    assert services.redis.process is not None
    return tree(services.postgres.process.pid) | tree(services.redis.process.pid)


def wait_gone(pids: set[int], timeout_seconds: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout_seconds
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = pids & set(process_table())
        time.sleep(0.05)
    return alive


def test_the_servers_come_from_the_wheels() -> None:
    assert (postgres_bin_dir() / "postgres").is_file()
    assert (postgres_bin_dir() / "initdb").is_file()
    assert os.access(redis_server_path(), os.X_OK)


def test_start_stop_restart_keeps_data_and_leaves_no_process(data_dir: Path) -> None:
    services = EmbeddedServices(data_dir)
    with services:
        cold = services.start_seconds
        password = (data_dir / "pg-password").read_text().strip()
        assert services.database_url.startswith(f"postgresql://postgres:{password}@127.0.0.1:")
        assert services.redis_url.startswith("redis://127.0.0.1:")
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('postgres survived')")
        client = redis.Redis.from_url(services.redis_url)
        client.set("kept", "redis survived")
        client.close()
        pids = server_pids(services)
        assert len(pids) >= 3  # postmaster, its auxiliary processes, redis-server
        owner = {ppid for pid, (ppid, _) in process_table().items() if pid in pids}
        assert os.getpid() in owner
    assert wait_gone(pids, 0.5) == set(), "servers left running after stop"
    assert services.postgres.process is None
    assert services.redis.process is None

    with EmbeddedServices(data_dir) as again:
        warm = again.start_seconds
        with psycopg.connect(again.database_url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone() == ("postgres survived",)
        client = redis.Redis.from_url(again.redis_url)
        assert client.get("kept") == b"redis survived"
        client.close()
        pids = server_pids(again)
    assert wait_gone(pids, 0.5) == set()
    print(f"\nembedded start: cold {cold}, warm {warm}")


def test_the_superuser_needs_its_password_over_tcp_and_there_is_no_unix_socket(data_dir: Path) -> None:
    with EmbeddedServices(data_dir, durable=False) as services:
        port = services.postgres.port
        for dsn in (
            f"postgresql://postgres@127.0.0.1:{port}/ringpilot",
            f"postgresql://postgres:guess@127.0.0.1:{port}/ringpilot",
        ):
            with pytest.raises(psycopg.OperationalError, match=r"password authentication failed|no password supplied"):
                psycopg.connect(dsn, connect_timeout=5)
        assert not list((data_dir / "pg").glob(".s.PGSQL.*"))
        assert (data_dir / "pg-password").stat().st_mode & 0o077 == 0
        with psycopg.connect(services.database_url) as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'").fetchone() == (True,)


def test_given_ports_are_used(data_dir: Path) -> None:
    from controller.devkit.embedded import free_port

    pg_port, redis_port = free_port(), free_port()
    with EmbeddedServices(data_dir, postgres_port=pg_port, redis_port=redis_port, durable=False) as services:
        assert f":{pg_port}/" in services.database_url
        assert services.redis_url == f"redis://127.0.0.1:{redis_port}/0"


def test_a_taken_port_that_was_asked_for_is_an_error(data_dir: Path) -> None:
    with EmbeddedServices(data_dir / "a", durable=False) as first:
        taken = int(first.redis_url.rsplit(":", 1)[1].split("/")[0])
        with pytest.raises(EmbeddedError, match=r"Embedded redis did not start"):
            EmbeddedServices(data_dir / "b", redis_port=taken, durable=False).start()
    assert not list(process_table_matching(str(data_dir)))


def process_table_matching(text: str) -> Iterator[int]:
    return (pid for pid, (_, args) in process_table().items() if text in args)


def test_a_second_owner_of_one_data_dir_is_refused(data_dir: Path) -> None:
    in_use = rf"{data_dir} is in use by another process \(pid {os.getpid()}\)"
    with EmbeddedServices(data_dir, durable=False), pytest.raises(EmbeddedError, match=in_use):
        EmbeddedServices(data_dir, durable=False).start()


def test_stale_pid_files_do_not_block_a_start(data_dir: Path) -> None:
    with EmbeddedServices(data_dir, durable=False):
        pass
    # A crashed run leaves pid files behind; here they name a live but unrelated process (us).
    pid_file = data_dir / "pg" / "postmaster.pid"
    pid_file.write_text(f"{os.getpid()}\n{data_dir / 'pg'}\n0\n5432\n\n127.0.0.1\n  0 0\nready   \n")
    (data_dir / "redis" / "redis.pid").write_text(f"{os.getpid()}\n")
    services = EmbeddedServices(data_dir, durable=False)
    with services, psycopg.connect(services.database_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


CHILD = textwrap.dedent("""
    import sys, time
    from controller.devkit.embedded import EmbeddedServices
    services = EmbeddedServices(sys.argv[1], die_with_parent=sys.argv[2] == "1").start()
    print(services.postgres.process.pid, services.redis.process.pid, services.database_url, flush=True)
    time.sleep(600)
""")


def start_owner(data_dir: Path, die_with_parent: bool) -> tuple[subprocess.Popen[str], int, int, str]:
    owner = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir), "1" if die_with_parent else "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    pg_pid, redis_pid, url = owner.stdout.readline().split()
    return owner, int(pg_pid), int(redis_pid), url


def test_servers_die_with_a_killed_owner(data_dir: Path) -> None:
    owner, pg_pid, redis_pid, _ = start_owner(data_dir, die_with_parent=True)
    pids = tree(pg_pid) | tree(redis_pid)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert wait_gone(pids) == set()


def test_servers_a_crashed_owner_left_running_are_replaced(data_dir: Path) -> None:
    owner, pg_pid, redis_pid, url = start_owner(data_dir, die_with_parent=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE before_crash (v int)")
    orphans = tree(pg_pid) | tree(redis_pid)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert orphans & set(process_table()), "the orphans should still be running"

    with EmbeddedServices(data_dir) as services:
        assert wait_gone(orphans) == set()
        with psycopg.connect(services.database_url) as conn:
            assert conn.execute("SELECT count(*) FROM before_crash").fetchone() == (0,)
        pids = server_pids(services)
    assert wait_gone(pids, 0.5) == set()


def test_a_missing_wheel_is_named() -> None:
    from controller.devkit.embedded import package_dir

    with pytest.raises(EmbeddedError, match=r"Package 'no_such_wheel' is not installed"):
        package_dir("no_such_wheel")


def test_a_server_that_is_not_ready_in_time_is_stopped(data_dir: Path) -> None:
    services = EmbeddedServices(data_dir, durable=False, timeout_seconds=0.0)
    with pytest.raises(EmbeddedError, match=r"Embedded postgres not ready after 0.0s"):
        services.start()
    assert services.postgres.process is None
    assert not list(process_table_matching(str(data_dir)))
