"""Circuit breakers whose state lives in Redis, so every worker (and `check_health`) sees the same breaker.

States follow domain.md §7.2: closed → open after `fail_max` consecutive failures → half-open after
`reset_seconds` (the next call is a probe) → closed on success, open again on failure. One hash per
breaker, `ringpilot:breaker:<name>` (fields state, failures, fail_max, reset_seconds, opened_at,
last_error, updated_at), and the set `ringpilot:breakers` of names: any process may use the layout.
When Redis itself is down the breakers fail open (calls are allowed) and the failure is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.exceptions import RedisError

from controller.telemetry.metrics import CIRCUIT_BREAKER_OPEN

logger = logging.getLogger(__name__)

PREFIX = "ringpilot:breaker:"
NAMES = "ringpilot:breakers"

# KEYS[1] breaker hash, KEYS[2] names set; ARGV: name, now, fail_max, reset_seconds, error
_FAILURE = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'fail_max', ARGV[3], 'reset_seconds', ARGV[4], 'last_error', ARGV[5], 'updated_at', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
if state == 'half_open' or (state == 'closed' and failures >= tonumber(ARGV[3])) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', ARGV[2])
  return 'open'
end
if state == 'closed' then redis.call('HSET', KEYS[1], 'state', 'closed') end
return state
"""
# KEYS[1] breaker hash; ARGV: now. Open and cool: half-open (this caller probes). Returns the state.
_ALLOW = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'open' then return state or 'closed' end
local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
local reset = tonumber(redis.call('HGET', KEYS[1], 'reset_seconds') or '60')
if tonumber(ARGV[1]) - opened >= reset then
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'updated_at', ARGV[1])
  return 'half_open'
end
return 'open'
"""


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Breaker:
    """One breaker as stored."""

    name: str
    state: BreakerState
    failures: int
    fail_max: int
    reset_seconds: float
    opened_at: float | None
    last_error: str

    def line(self) -> str:
        opened = time.strftime(" since %H:%M:%S UTC", time.gmtime(self.opened_at)) if self.opened_at else ""
        error = f"; last error: {self.last_error}" if self.last_error and self.state is not BreakerState.CLOSED else ""
        return f"{self.name}: {self.state.value}{opened} ({self.failures}/{self.fail_max} failures){error}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _show(name: str, state: str) -> None:
    """`ringpilot_circuit_breaker_open{breaker}`: 1 while this process last saw the breaker open."""
    CIRCUIT_BREAKER_OPEN.labels(name).set(1 if state == BreakerState.OPEN.value else 0)


class BreakerBoard:
    """Reads and updates breakers in Redis (an asyncio client)."""

    def __init__(
        self, redis: Any, *, fail_max: int = 5, reset_seconds: float = 60.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = redis
        self.fail_max = fail_max
        self.reset_seconds = reset_seconds
        self.clock = clock

    async def allow(self, name: str) -> bool:
        """True if a call may go through (closed, or the half-open probe); True as well if Redis is down."""
        try:
            state = _text(await self.redis.eval(_ALLOW, 1, PREFIX + name, str(self.clock())))
        except (RedisError, OSError) as error:
            logger.warning("Breaker %r not readable, allowing the call: %s", name, type(error).__name__)
            return True
        _show(name, state)
        return state != BreakerState.OPEN.value

    async def record_success(self, name: str) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(
                    PREFIX + name,
                    mapping={
                        "state": BreakerState.CLOSED.value,
                        "failures": 0,
                        "fail_max": self.fail_max,
                        "reset_seconds": self.reset_seconds,
                        "updated_at": self.clock(),
                        "last_error": "",
                    },
                )
                pipe.sadd(NAMES, name)
                await pipe.execute()
        except (RedisError, OSError) as error:
            logger.warning("Breaker %r not updated: %s", name, type(error).__name__)
            return
        _show(name, BreakerState.CLOSED.value)

    async def record_failure(self, name: str, error: str) -> BreakerState:
        try:
            state = await self.redis.eval(
                _FAILURE,
                2,
                PREFIX + name,
                NAMES,
                name,
                str(self.clock()),
                str(self.fail_max),
                str(self.reset_seconds),
                error[:300],
            )
        except (RedisError, OSError) as failure:
            logger.warning("Breaker %r not updated: %s", name, type(failure).__name__)
            return BreakerState.CLOSED
        result = BreakerState(_text(state))
        _show(name, result.value)
        if result is BreakerState.OPEN:
            logger.warning("Circuit breaker %r is open: %s", name, error[:300])
        return result

    async def get(self, name: str) -> Breaker:
        raw = await self.redis.hgetall(PREFIX + name)
        fields = {_text(k): _text(v) for k, v in raw.items()}
        opened = fields.get("opened_at")
        return Breaker(
            name=name,
            state=BreakerState(fields.get("state", BreakerState.CLOSED.value)),
            failures=int(fields.get("failures", 0)),
            fail_max=int(fields.get("fail_max", self.fail_max)),
            reset_seconds=float(fields.get("reset_seconds", self.reset_seconds)),
            opened_at=float(opened) if opened and fields.get("state") != BreakerState.CLOSED.value else None,
            last_error=fields.get("last_error", ""),
        )

    async def snapshot(self) -> list[Breaker]:
        """Every known breaker, by name; raises RedisError when Redis is down (health reports that)."""
        names = sorted(_text(n) for n in await self.redis.smembers(NAMES))
        return [await self.get(name) for name in names]
