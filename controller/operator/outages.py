"""A reconcile that failed because PostgreSQL, Redis or the Kubernetes API is down: say so, retry soon.

`dependency_of` names the dependency behind an error (walking its causes). The handler then sets a
`Waiting` condition on the object (`Waiting: PostgreSQL unavailable since …`), keeping the time the
outage was first seen, and retries after `retry_delay_seconds`: 1 s, doubling, capped at 8 s, so a
task resumes within 10 s of the dependency's return instead of after Kopf's fixed 60 s. The first
reconcile that gets through clears the condition (`cleared`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
import psycopg_pool
import redis.exceptions

from controller.api.meta import Condition
from controller.core import conditions
from controller.kube.errors import KubeError

WAITING = "Waiting"
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 8.0
#: The dependency an error type means, and the condition reason that names it.
_DEPENDENCIES: tuple[tuple[tuple[type[BaseException], ...], str, str], ...] = (
    ((psycopg.OperationalError, psycopg_pool.PoolTimeout), "PostgreSQL", "PostgreSQLUnavailable"),
    ((redis.exceptions.ConnectionError, redis.exceptions.TimeoutError), "Redis", "RedisUnavailable"),
)
REASONS = frozenset({"PostgreSQLUnavailable", "RedisUnavailable", "KubernetesUnavailable"})


def dependency_of(error: BaseException) -> tuple[str, str] | None:
    """(dependency, condition reason) when `error` or one of its causes means a dependency is down."""
    seen: BaseException | None = error
    while seen is not None:
        for types, name, reason in _DEPENDENCIES:
            if isinstance(seen, types):
                return name, reason
        if isinstance(seen, KubeError) and seen.transient:
            return "the Kubernetes API", "KubernetesUnavailable"
        seen = seen.__cause__ or seen.__context__
    return None


def retry_delay_seconds(retry: int) -> float:
    """The wait before retry number `retry + 1` (Kopf counts retries from 0): 1, 2, 4, 8, 8, … seconds."""
    return float(min(FIRST_RETRY_SECONDS * 2 ** max(retry, 0), MAX_RETRY_SECONDS))


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def waiting_condition(
    body: dict[str, Any], dependency: str, reason: str, error: BaseException, now: datetime
) -> Condition:
    """`Waiting` True naming `dependency` and since when (kept from an earlier one of the same reason)."""
    old = conditions.find(conditions.current_conditions(body), WAITING)
    since = old.last_transition_time if old is not None and old.reason == reason and old.status == "True" else None
    detail = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
    generation = (body.get("metadata") or {}).get("generation")
    condition = conditions.make(
        WAITING, True, reason, f"{dependency} unavailable since {_stamp(since or now)}: {detail}", generation, now
    )
    return condition.model_copy(update={"last_transition_time": since or now})


def cleared(body: dict[str, Any], now: datetime) -> Condition | None:
    """`Waiting` False once a reconcile got through, if an outage's `Waiting` is still set; else None."""
    old = conditions.find(conditions.current_conditions(body), WAITING)
    if old is None or old.status != "True" or old.reason not in REASONS:
        return None
    generation = (body.get("metadata") or {}).get("generation")
    message = f"{old.reason.removesuffix('Unavailable')} is back since {_stamp(now)}"
    return conditions.make(WAITING, False, "DependenciesAvailable", message, generation, now)
