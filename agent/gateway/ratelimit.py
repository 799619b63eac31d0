"""Chat turns per user and minute: `TurnLimiter.admit(user)` is the wait before the next turn, or 0.

The count lives in Redis (one key per user and clock minute, `INCR` + `EXPIRE`), so every gateway
replica shares it. With Redis unreachable each replica counts on its own, so the limit still holds
per replica and a Redis outage never blocks chatting.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

KEY_PREFIX = "ringpilot:gateway:turns:"
WINDOW_SECONDS = 60


class TurnLimiter:
    """A fixed one-minute window per user (see the module docstring)."""

    def __init__(self, redis: Any, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.per_minute = per_minute
        self.clock = clock
        self._local: dict[tuple[str, int], int] = {}

    def _count_locally(self, key: tuple[str, int]) -> int:
        window = key[1]
        for old in [k for k in self._local if k[1] < window]:
            del self._local[old]
        self._local[key] = self._local.get(key, 0) + 1
        return self._local[key]

    async def admit(self, user: str) -> int:
        """Count one turn of `user`; 0 if allowed, else the seconds until the window ends (Retry-After)."""
        now = self.clock()
        window = int(now // WINDOW_SECONDS)
        count: int | None = None
        if self.redis is not None:
            key = f"{KEY_PREFIX}{user}:{window}"
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, WINDOW_SECONDS + 5)
                    count = int((await pipe.execute())[0])
            except (RedisError, OSError) as error:
                logger.warning("Turn limit counted in this replica only: %s", type(error).__name__)
        if count is None:
            count = self._count_locally((user, window))
        if count <= self.per_minute:
            return 0
        return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
