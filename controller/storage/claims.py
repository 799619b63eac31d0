"""Step claims: at-most-once execution of a step however often Kopf or Redis delivers it.

An actor calls `claim` with a natural key (e.g. `<task uid>/<step>/<attempt>`) before doing work; only
the first caller gets True. It stores the result with `finish`; a duplicate delivery reads it with
`get`. `release` gives an unfinished claim back so a retry can take it. `announce` tells the controller,
by a NOTIFY on `REPORTS_CHANNEL`, that the report of an object's step is stored (storage/listening.py).

A claim's owner is a process, `<role>-<host>-<pid>` (`process_owner`). A claim left unfinished by a
process of this host that no longer runs (`owner_gone`) can be taken over at once; one whose owner may
still run (here, or on another host) only once it is older than its caller's lease.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from controller.storage.db import Pool

_CLAIM = """
INSERT INTO step_claims (key, correlation_id, owner) VALUES (%s, %s, %s)
ON CONFLICT (key) DO NOTHING
"""
_FINISH = """
UPDATE step_claims SET outcome = %s, finished_at = now()
WHERE key = %s AND finished_at IS NULL
"""
_EXISTS = "SELECT 1 FROM step_claims WHERE key = %s"
_GET = """
SELECT key, correlation_id, owner, claimed_at, outcome, finished_at FROM step_claims WHERE key = %s
"""
_RELEASE = "DELETE FROM step_claims WHERE key = %s AND owner = %s AND finished_at IS NULL"
_NOTIFY = "SELECT pg_notify(%s, %s)"
#: The channel a stored step report is announced on; the payload is the uid of the object the step is for.
REPORTS_CHANNEL = "ringpilot_step_reports"


def process_owner(role: str) -> str:
    """Who this process is in step claims: `<role>-<host>-<pid>`, e.g. `worker-…` or `plane-…`."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}"


def owner_gone(owner: str) -> bool:
    """Whether `owner` (a `process_owner`) was a process of this host that no longer runs.

    An owner on another host, this very process, or one whose pid still runs (it may have been reused)
    is not known to be gone.
    """
    role_and_host, _, pid = owner.rpartition("-")
    role, _, host = role_and_host.partition("-")
    if not role or host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)  # signal 0 sends nothing: it only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it runs, as another user
        pass
    return False


class ClaimNotFoundError(LookupError):
    """`finish` was called for a key nobody claimed."""


class StepClaim(BaseModel):
    """A row of `step_claims`: who took a step, when, and how it ended (if it has)."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="Natural key of the step")
    correlation_id: str = Field(description="Correlation ID of the intent the step belongs to")
    owner: str = Field(description="Who claimed it, e.g. `worker-<host>-<pid>`")
    claimed_at: datetime = Field(description="When it was claimed")
    outcome: dict[str, Any] | None = Field(None, description="Result recorded by `finish`")
    finished_at: datetime | None = Field(None, description="When `finish` recorded the outcome")

    @property
    def finished(self) -> bool:
        """True once an outcome has been recorded."""
        return self.finished_at is not None


async def claim(pool: Pool, key: str, correlation_id: str, owner: str) -> bool:
    """Claim `key` for `owner`; True only for the first claimer, False for every later one."""
    async with pool.connection() as conn:
        cursor = await conn.execute(_CLAIM, (key, correlation_id, owner))
        return cursor.rowcount == 1


async def finish(pool: Pool, key: str, outcome: dict[str, Any]) -> bool:
    """Record the outcome of a claimed step; False if it was already finished (the first one stays).

    Raises `ClaimNotFoundError` if `key` was never claimed (or was released).
    """
    async with pool.connection() as conn:
        cursor = await conn.execute(_FINISH, (Jsonb(outcome), key))
        if cursor.rowcount == 1:
            return True
        exists = await (await conn.execute(_EXISTS, (key,))).fetchone()
    if exists is None:
        raise ClaimNotFoundError(f"Step {key!r} was never claimed")
    return False


async def get(pool: Pool, key: str) -> StepClaim | None:
    """The claim on `key`, or None if nobody holds it."""
    async with pool.connection() as conn:
        row = await (await conn.execute(_GET, (key,))).fetchone()
    return StepClaim.model_validate(row) if row is not None else None


async def release(pool: Pool, key: str, owner: str) -> bool:
    """Drop `owner`'s unfinished claim on `key` so a retry can claim it; False if there was none."""
    async with pool.connection() as conn:
        cursor = await conn.execute(_RELEASE, (key, owner))
        return cursor.rowcount == 1


async def announce(pool: Pool, uid: str) -> None:
    """NOTIFY `REPORTS_CHANNEL` that a report for object `uid` is stored (delivered when this commits)."""
    async with pool.connection() as conn:
        await conn.execute(_NOTIFY, (REPORTS_CHANNEL, uid))
