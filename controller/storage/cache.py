"""Redis clients for the broker, the chat-context cache and shared circuit-breaker state.

`redis_client` (async) and `redis_client_sync` build clients from a URL with short socket timeouts so
a stopped Redis surfaces as an error within seconds, never a hung step; `ping` and `ping_sync` are the
health checks behind `/healthz` and `ringpilot dev`.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import redis
import redis.asyncio
from redis.exceptions import RedisError

_SCHEMES = ("redis", "rediss", "unix")


def validate_redis_url(url: str) -> str:
    """Return `url` unchanged if it is `redis[s]://host:port/db` or `unix:///path?db=N`.

    Raises `ValueError` (so pydantic reports it against the setting) otherwise.
    """
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ValueError(f"scheme {parts.scheme or '(none)'!r} is not one of redis://, rediss://, unix://")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("unix:// URL needs a socket path, e.g. unix:///run/redis.sock?db=0")
        db_values = parse_qs(parts.query).get("db", ["0"])
        db = db_values[0]
    else:
        if not parts.hostname:
            raise ValueError("URL needs a host, e.g. redis://127.0.0.1:6379/0")
        try:
            _ = parts.port
        except ValueError as e:
            raise ValueError(f"bad port: {e}") from e
        db = parts.path.lstrip("/") or "0"
    if not db.isdigit():
        raise ValueError(f"database {db!r} is not a number")
    return url


def redis_client(
    url: str, *, socket_timeout_seconds: float = 2.0, decode_responses: bool = False
) -> redis.asyncio.Redis:
    """An asyncio client for `url`; close it with `await client.aclose()`."""
    validate_redis_url(url)
    return redis.asyncio.Redis.from_url(
        url,
        socket_timeout=socket_timeout_seconds,
        socket_connect_timeout=socket_timeout_seconds,
        health_check_interval=30,
        decode_responses=decode_responses,
    )


def redis_client_sync(url: str, *, socket_timeout_seconds: float = 2.0, decode_responses: bool = False) -> redis.Redis:
    """A blocking client for `url` (dramatiq's broker and the CLI); close it with `client.close()`."""
    validate_redis_url(url)
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout_seconds,
        socket_connect_timeout=socket_timeout_seconds,
        health_check_interval=30,
        decode_responses=decode_responses,
    )


async def ping(client: redis.asyncio.Redis) -> bool:
    """True if Redis answers PING within the client's socket timeout, False on any Redis error."""
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False


def ping_sync(client: redis.Redis) -> bool:
    """Blocking twin of `ping`."""
    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False
