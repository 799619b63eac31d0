"""Connection helpers: DSN validation, pools with dict rows, Redis clients and their health checks."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import pytest
import redis
import redis.asyncio
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from controller.devkit.embedded import free_port
from controller.storage.cache import ping, ping_sync, redis_client, redis_client_sync, validate_redis_url
from controller.storage.db import (
    RECONNECT_SECONDS,
    aconnect,
    connect,
    open_pool,
    revive,
    validate_database_url,
    with_database,
)


def test_with_database_keeps_everything_but_the_database() -> None:
    dsn = with_database("postgresql://rp:pw@db.example:5433/ringpilot?sslmode=require", "t_1")
    assert dsn == "user=rp password=pw dbname=t_1 host=db.example port=5433 sslmode=require"
    assert validate_database_url(dsn) == dsn


@pytest.mark.parametrize("dsn", ["mysql://h/db", "not a dsn"])
def test_non_postgres_dsns_are_refused(dsn: str) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        validate_database_url(dsn)


async def test_a_pool_returns_dict_rows(database_url: str) -> None:
    pool = await open_pool(database_url, min_size=1, max_size=2)
    try:
        async with pool.connection() as conn:
            row = await (await conn.execute("SELECT 1 AS one, current_database() AS db")).fetchone()
        assert row is not None
        assert row["one"] == 1
        assert str(row["db"]).startswith("t_")
    finally:
        await pool.close()


async def test_one_off_connections_return_dict_rows(database_url: str) -> None:
    with connect(database_url) as conn:
        assert conn.execute("SELECT 2 AS two").fetchone() == {"two": 2}
    async with await aconnect(database_url, autocommit=True) as aconn:
        assert await (await aconn.execute("SELECT 3 AS three")).fetchone() == {"three": 3}


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://:pw@cache:6380", "unix:///run/redis.sock?db=3", "redis://h/"]
)
def test_redis_urls_accepted(url: str) -> None:
    assert validate_redis_url(url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h", "scheme 'http'"),
        ("localhost:6379", "scheme 'localhost'"),
        ("unix://", "needs a socket path"),
        ("redis:///0", "needs a host"),
        ("redis://h:99999/0", "bad port"),
        ("redis://h/zero", "database 'zero' is not a number"),
        ("unix:///s.sock?db=x", "database 'x' is not a number"),
    ],
)
def test_bad_redis_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_redis_url(url)


async def test_ping_answers_for_a_live_redis(redis_async: redis.asyncio.Redis, redis_sync: redis.Redis) -> None:
    assert await ping(redis_async) is True
    assert ping_sync(redis_sync) is True
    await redis_async.set("k", "v")
    assert redis_sync.get("k") == b"v"


async def test_decoded_clients_return_text(redis_url: str) -> None:
    client = redis_client(redis_url, decode_responses=True)
    try:
        await client.set("k", "v")
        assert await client.get("k") == "v"
    finally:
        await client.aclose()


def test_each_test_gets_an_empty_redis_database(redis_sync: redis.Redis) -> None:
    assert redis_sync.dbsize() == 0
    redis_sync.set("left-over", "1")


def test_and_the_next_test_too(redis_sync: redis.Redis) -> None:
    assert redis_sync.dbsize() == 0


@pytest.mark.parametrize("url", ["redis://127.0.0.1:{port}/0", "unix:///nonexistent/redis.sock?db=0"])
async def test_ping_is_false_quickly_when_redis_is_down(url: str) -> None:
    url = url.format(port=free_port())
    client = redis_client(url, socket_timeout_seconds=0.5)
    sync_client = redis_client_sync(url, socket_timeout_seconds=0.5)
    try:
        assert await ping(client) is False
        assert ping_sync(sync_client) is False
    finally:
        await client.aclose()
        sync_client.close()


async def _terminate(database_url: str, pid: int) -> None:
    async with await aconnect(database_url) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def test_an_idle_pooled_connection_is_checked_and_replaced_when_its_server_side_is_gone(
    database_url: str,
) -> None:
    pool = await open_pool(database_url, min_size=1, max_size=1, recent_seconds=0)
    try:
        async with pool.connection() as conn:
            pid = conn.info.backend_pid
        await _terminate(database_url, pid)
        async with pool.connection() as conn:  # checked on the way out, found dead, replaced
            assert conn.info.backend_pid != pid
            assert (await (await conn.execute("SELECT 1 AS one")).fetchone()) == {"one": 1}
    finally:
        await pool.close()


async def test_a_connection_used_moments_ago_is_handed_out_unchecked_and_a_broken_one_is_then_dropped(
    database_url: str,
) -> None:
    pool = await open_pool(database_url, min_size=1, max_size=1, recent_seconds=60)
    try:
        async with pool.connection() as conn:
            pid = conn.info.backend_pid
        await _terminate(database_url, pid)
        with pytest.raises(psycopg.OperationalError):  # no round trip to check it: the caller's retry covers this
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
        async with pool.connection() as conn:  # the broken one was not put back
            assert conn.info.backend_pid != pid
            assert (await (await conn.execute("SELECT 1 AS one")).fetchone()) == {"one": 1}
    finally:
        await pool.close()


class Outage:
    """A TCP port in front of the test's PostgreSQL that can go away and come back: a server outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.open: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def down(self) -> None:
        """Refuse new connections and cut the open ones, as a stopped server does."""
        assert self.server is not None
        self.server.close()
        for writer in list(self.open):
            writer.transport.abort()
        await self.server.wait_closed()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.open |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self.open -= {writer, upstream_writer}


async def test_a_caller_waiting_out_an_outage_is_served_as_soon_as_the_pool_is_revived(database_url: str) -> None:
    params = conninfo_to_dict(database_url)
    outage = Outage(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
    await outage.up()
    pool = await open_pool(make_conninfo(database_url, host="127.0.0.1", port=outage.port), timeout_seconds=20)

    async def select_one() -> object:
        async with pool.connection() as conn:
            row = await (await conn.execute("SELECT 1 AS one")).fetchone()
            return None if row is None else row["one"]

    try:
        await outage.down()
        await pool.check()  # the pooled connection is found broken (as a caller's check would find it)
        waiting = asyncio.create_task(select_one())
        await asyncio.sleep(RECONNECT_SECONDS + 2)  # the pool has tried, and given up until it is asked again
        assert not waiting.done()
        await outage.up()
        await asyncio.sleep(1.0)
        assert not waiting.done(), "the pool tried again on its own: this test no longer shows what revive adds"
        await revive(pool)  # as the controller does when its listening connection opens again
        assert await asyncio.wait_for(waiting, 2) == 1
    finally:
        await pool.close()
        with contextlib.suppress(AssertionError):
            await outage.down()
