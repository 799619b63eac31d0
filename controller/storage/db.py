"""PostgreSQL connections: the async pool every long-running process shares, and a sync connect.

Callers: the controller, workers and the gateway open one `Pool` at start (`open_pool`) and close it
at exit; `ringpilot migrate` and the tests use `connect` (`ringpilot trace` asks the gateway). Rows
come back as dicts (`dict_row`) so repositories can validate them straight into pydantic models.
"""

from __future__ import annotations

import time
import weakref
from typing import Any, TypeAlias

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

#: The pool type repositories take: async connections that return rows as dicts.
Pool: TypeAlias = AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]

_URI_SCHEMES = ("postgresql://", "postgres://")
#: A connection back in the pool for less than this is handed out again without a round trip to check it.
RECENT_SECONDS = 5.0
#: How long the pool keeps trying to open one lost connection (1 s, then 2 s apart) before the next caller
#: starts again. psycopg's default keeps one attempt doubling its delay for 5 minutes, so a pool back from a
#: 30 s outage could wait 16 s more for its next try.
RECONNECT_SECONDS = 5.0


class RecentUse:
    """The pool's `check` and `reset` callbacks: check a connection only if it sat idle for a while.

    A check costs a round trip per checkout (half of a task's statements once). A connection used moments
    ago is almost surely fine, and if the server went away meanwhile the failed query is an `Unavailable`
    that every caller already retries; one idle for longer is checked, so a restart overnight does not
    surface as a broken first query.
    """

    def __init__(self, recent_seconds: float = RECENT_SECONDS) -> None:
        self.recent_seconds = recent_seconds
        self.returned: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self.checks = 0

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.returned[conn] = time.monotonic()

    async def check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        returned = self.returned.get(conn)
        if returned is not None and time.monotonic() - returned < self.recent_seconds:
            return
        self.checks += 1
        await AsyncConnectionPool.check_connection(conn)


def validate_database_url(dsn: str) -> str:
    """Return `dsn` unchanged if libpq can parse it as a PostgreSQL URI or key=value string.

    Raises `ValueError` (so pydantic reports it against the setting) for anything else, such as a
    Redis URL pasted into the wrong variable.
    """
    if "://" in dsn and not dsn.startswith(_URI_SCHEMES):
        scheme = dsn.split("://", 1)[0]
        raise ValueError(f"scheme {scheme!r} is not a PostgreSQL URL (use postgresql://)")
    try:
        conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as e:
        raise ValueError(f"not a PostgreSQL connection string: {e}") from e
    return dsn


def with_database(dsn: str, dbname: str) -> str:
    """Return `dsn` pointing at another database on the same server (same user, host, options)."""
    return make_conninfo(dsn, dbname=dbname)


def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    name: str = "ringpilot",
    timeout_seconds: float = 10.0,
    connect_timeout_seconds: int = 5,
    recent_seconds: float = RECENT_SECONDS,
    reconnect_seconds: float = RECONNECT_SECONDS,
) -> Pool:
    """Build an unopened pool; `await pool.open(wait=True)` (or use `open_pool`) before use.

    `timeout_seconds` bounds how long a caller waits for a free connection; a connection that sat idle
    is checked before it is handed out (`RecentUse`). A lost server is tried again for `reconnect_seconds`
    at a time; `revive` tries at once when the server is known to be back.
    """
    kwargs: dict[str, Any] = {"row_factory": dict_row, "connect_timeout": connect_timeout_seconds}
    recent = RecentUse(recent_seconds)
    return AsyncConnectionPool(
        dsn,
        connection_class=psycopg.AsyncConnection[DictRow],
        kwargs=kwargs,
        min_size=min_size,
        max_size=max_size,
        name=name,
        timeout=timeout_seconds,
        reconnect_timeout=reconnect_seconds,
        open=False,
        check=recent.check,
        reset=recent.reset,
    )


async def revive(pool: Pool) -> None:
    """Open a connection now, for the callers waiting on `pool`: its server has been seen back after an outage.

    Idle connections are checked too (those the outage broke are replaced), so no caller waits out the
    pool's own backoff.
    """
    await pool.check()


async def open_pool(dsn: str, **options: Any) -> Pool:
    """Create a pool with `create_pool(dsn, **options)`, open it and wait for `min_size` connections."""
    pool = create_pool(dsn, **options)
    await pool.open(wait=True)
    return pool


def connect(dsn: str, *, autocommit: bool = False, connect_timeout_seconds: int = 5) -> psycopg.Connection[DictRow]:
    """Open one sync connection with dict rows, for the CLI and for tests; use it as a context manager."""
    return psycopg.connect(dsn, autocommit=autocommit, row_factory=dict_row, connect_timeout=connect_timeout_seconds)


async def aconnect(
    dsn: str, *, autocommit: bool = False, connect_timeout_seconds: int = 5
) -> psycopg.AsyncConnection[DictRow]:
    """Open one async connection with dict rows (migrations and one-off admin statements)."""
    return await psycopg.AsyncConnection.connect(
        dsn, autocommit=autocommit, row_factory=dict_row, connect_timeout=connect_timeout_seconds
    )
