"""LISTEN on a PostgreSQL channel for as long as the controller runs: the wake-ups of step reports.

A NOTIFY reaches only the sessions listening when it commits, so a connection lost and opened again may
have missed some: `on_connect` runs after each LISTEN (the caller wakes everything it waits on, and a
level-based round finds what changed). The listening connection is its own, outside the pool, in
autocommit mode, so it holds no transaction open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

#: How long to wait before opening a lost listening connection again.
RECONNECT_SECONDS = 1.0


async def listen(
    dsn: str,
    channel: str,
    on_payload: Callable[[str], object],
    on_connect: Callable[[], Awaitable[None]] | None = None,
    *,
    reconnect_seconds: float = RECONNECT_SECONDS,
) -> None:
    """Hand each notification's payload on `channel` to `on_payload` until cancelled."""
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=5)
            async with conn:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                if on_connect is not None:
                    await on_connect()
                async for note in conn.notifies():
                    on_payload(note.payload)
        except (psycopg.Error, OSError) as error:
            logger.warning("Listening on %s stopped (%s); again in %.0fs", channel, error, reconnect_seconds)
        await asyncio.sleep(reconnect_seconds)
