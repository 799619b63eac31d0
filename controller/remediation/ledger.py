"""The remediation ledger in PostgreSQL (migration 0200): records, attempts and counter resets.

The drift sweep notes the Remediations it opens (so `requestedBy: system:ringpilot` cannot be
forged with kubectl) and when an Assignment completed a synced interval; the Remediation controller
keeps every Remediation's phase and every attempt. Starting an attempt checks the concurrency and
hourly limits and inserts the row in one transaction under an advisory lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from controller.api.assignment import DriftType
from controller.api.policy import RemediationLimits
from controller.remediation.backoff import AttemptOutcome, AttemptRecord
from controller.remediation.deciding import RateCounts
from controller.storage.db import Pool

#: `pg_advisory_xact_lock` key while starting an attempt ("RPRM" in ASCII).
LOCK_KEY = 0x5250524D
#: Hourly limit window.
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class RecordInfo:
    """One row of `remediation_records`."""

    namespace: str
    name: str
    correlation_id: str
    opened_at: datetime
    phase: str = "Pending"
    uid: str | None = None
    assignment_uid: str | None = None
    drift_type: str | None = None
    opened_by_loop: bool = False
    dry_run: bool = False
    closed_at: datetime | None = None


@dataclass(frozen=True)
class NewAttempt:
    assignment_uid: str
    drift_type: DriftType
    number: int
    remediation_uid: str
    remediation: str
    app: str
    ring: int
    action: str


class Ledger(Protocol):
    async def note_opened(self, record: RecordInfo) -> None: ...

    async def record_for(self, namespace: str, name: str) -> RecordInfo | None: ...

    async def records(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], RecordInfo]: ...

    async def save_record(self, record: RecordInfo) -> None: ...

    async def open_for_assignment(self, assignment_uid: str, exclude: tuple[str, str]) -> RecordInfo | None: ...

    async def history(self, assignment_uid: str) -> tuple[list[AttemptRecord], datetime | None]: ...

    async def pending_attempt(self, remediation_uid: str) -> AttemptRecord | None: ...

    async def rate_counts(self, app: str, ring: int, now: datetime, stale_seconds: float) -> RateCounts: ...

    async def start_attempt(
        self, attempt: NewAttempt, limits: RemediationLimits, now: datetime, stale_seconds: float
    ) -> AttemptRecord | None: ...

    async def finish_attempt(
        self, remediation_uid: str, number: int, outcome: AttemptOutcome, now: datetime
    ) -> None: ...

    async def set_reset_points(self, points: dict[str, datetime]) -> None: ...


_RECORD_COLUMNS = (
    "namespace, name, uid, assignment_uid, drift_type, correlation_id, opened_by_loop, dry_run, phase, "
    "opened_at, closed_at"
)
_NOTE = f"""
INSERT INTO remediation_records ({_RECORD_COLUMNS})
VALUES (%(namespace)s, %(name)s, %(uid)s, %(assignment_uid)s, %(drift_type)s, %(correlation_id)s,
        %(opened_by_loop)s, %(dry_run)s, %(phase)s, %(opened_at)s, %(closed_at)s)
ON CONFLICT (namespace, name) DO NOTHING
"""
_SAVE = f"""
INSERT INTO remediation_records ({_RECORD_COLUMNS})
VALUES (%(namespace)s, %(name)s, %(uid)s, %(assignment_uid)s, %(drift_type)s, %(correlation_id)s,
        %(opened_by_loop)s, %(dry_run)s, %(phase)s, %(opened_at)s, %(closed_at)s)
ON CONFLICT (namespace, name) DO UPDATE SET
    uid = EXCLUDED.uid, assignment_uid = EXCLUDED.assignment_uid, drift_type = EXCLUDED.drift_type,
    correlation_id = EXCLUDED.correlation_id, opened_by_loop = EXCLUDED.opened_by_loop,
    dry_run = EXCLUDED.dry_run, phase = EXCLUDED.phase, closed_at = EXCLUDED.closed_at
"""
_GET = f"SELECT {_RECORD_COLUMNS} FROM remediation_records WHERE namespace = %s AND name = %s"
_MANY = f"""
SELECT {_RECORD_COLUMNS} FROM remediation_records r
JOIN unnest(%s::text[], %s::text[]) AS k(namespace, name) USING (namespace, name)
"""
_OPEN = f"""
SELECT {_RECORD_COLUMNS} FROM remediation_records
WHERE assignment_uid = %s AND closed_at IS NULL AND NOT dry_run AND NOT (namespace = %s AND name = %s)
ORDER BY opened_at LIMIT 1
"""
_ATTEMPT_COLUMNS = "number, drift_type, started_at, outcome, finished_at, remediation, action, remediation_uid"
_HISTORY = f"""
SELECT {_ATTEMPT_COLUMNS} FROM remediation_attempts WHERE assignment_uid = %s ORDER BY started_at, id
"""
_RESET = "SELECT reset_at FROM drift_counter_resets WHERE assignment_uid = %s"
_PENDING = f"""
SELECT {_ATTEMPT_COLUMNS} FROM remediation_attempts
WHERE remediation_uid = %s AND outcome = 'pending' ORDER BY number DESC LIMIT 1
"""
_COUNTS = """
SELECT count(*) FILTER (WHERE ring = %(ring)s AND outcome = 'pending' AND started_at > %(stale)s) AS in_ring,
       count(*) FILTER (WHERE app = %(app)s AND outcome = 'pending' AND started_at > %(stale)s) AS for_app,
       count(*) FILTER (WHERE started_at > %(hour)s) AS last_hour
FROM remediation_attempts WHERE started_at > least(%(stale)s, %(hour)s)
"""
_INSERT_ATTEMPT = f"""
INSERT INTO remediation_attempts
    (assignment_uid, drift_type, number, remediation_uid, remediation, app, ring, action, started_at)
VALUES (%(assignment_uid)s, %(drift_type)s, %(number)s, %(remediation_uid)s, %(remediation)s, %(app)s,
        %(ring)s, %(action)s, %(now)s)
ON CONFLICT (remediation_uid, number) DO NOTHING
RETURNING {_ATTEMPT_COLUMNS}
"""
_FINISH_ATTEMPT = """
UPDATE remediation_attempts SET outcome = %s, finished_at = %s
WHERE remediation_uid = %s AND number = %s AND outcome = 'pending'
"""
_SET_RESET = """
INSERT INTO drift_counter_resets (assignment_uid, reset_at) VALUES (%s, %s)
ON CONFLICT (assignment_uid) DO UPDATE
SET reset_at = greatest(drift_counter_resets.reset_at, EXCLUDED.reset_at)
"""


def _record(row: dict[str, Any]) -> RecordInfo:
    return RecordInfo(**row)


def _attempt(row: dict[str, Any]) -> AttemptRecord:
    return AttemptRecord(
        number=row["number"],
        drift_type=DriftType(row["drift_type"]),
        started_at=row["started_at"],
        outcome=AttemptOutcome(row["outcome"]),
        finished_at=row["finished_at"],
        remediation=row["remediation"],
        action=row["action"],
        remediation_uid=row["remediation_uid"],
    )


def over_limits(counts: RateCounts, limits: RemediationLimits) -> bool:
    return (
        counts.in_ring >= limits.max_concurrent_per_ring
        or counts.for_app >= limits.max_concurrent_per_app
        or counts.last_hour >= limits.max_per_hour
    )


class PgLedger:
    """`Ledger` on the shared PostgreSQL pool."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def note_opened(self, record: RecordInfo) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_NOTE, record.__dict__)

    async def record_for(self, namespace: str, name: str) -> RecordInfo | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_GET, (namespace, name))).fetchone()
        return _record(row) if row is not None else None

    async def records(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], RecordInfo]:
        pairs = list(keys)
        if not pairs:
            return {}
        async with self.pool.connection() as conn:
            cursor = await conn.execute(_MANY, ([p[0] for p in pairs], [p[1] for p in pairs]))
            rows = await cursor.fetchall()
        return {(r["namespace"], r["name"]): _record(r) for r in rows}

    async def save_record(self, record: RecordInfo) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_SAVE, record.__dict__)

    async def open_for_assignment(self, assignment_uid: str, exclude: tuple[str, str]) -> RecordInfo | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_OPEN, (assignment_uid, *exclude))).fetchone()
        return _record(row) if row is not None else None

    async def history(self, assignment_uid: str) -> tuple[list[AttemptRecord], datetime | None]:
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_HISTORY, (assignment_uid,))).fetchall()
            reset = await (await conn.execute(_RESET, (assignment_uid,))).fetchone()
        return [_attempt(r) for r in rows], (reset["reset_at"] if reset else None)

    async def pending_attempt(self, remediation_uid: str) -> AttemptRecord | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_PENDING, (remediation_uid,))).fetchone()
        return _attempt(row) if row is not None else None

    async def rate_counts(self, app: str, ring: int, now: datetime, stale_seconds: float) -> RateCounts:
        async with self.pool.connection() as conn:
            return await self._counts(conn, app, ring, now, stale_seconds)

    @staticmethod
    async def _counts(conn: Any, app: str, ring: int, now: datetime, stale_seconds: float) -> RateCounts:
        params = {
            "app": app,
            "ring": ring,
            "stale": now - timedelta(seconds=stale_seconds),
            "hour": now - HOUR,
        }
        row = await (await conn.execute(_COUNTS, params)).fetchone()
        return RateCounts(in_ring=row["in_ring"], for_app=row["for_app"], last_hour=row["last_hour"])

    async def start_attempt(
        self, attempt: NewAttempt, limits: RemediationLimits, now: datetime, stale_seconds: float
    ) -> AttemptRecord | None:
        """Insert the attempt unless a limit is reached (then None), atomically across controllers."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            if over_limits(await self._counts(conn, attempt.app, attempt.ring, now, stale_seconds), limits):
                return None
            params = {**attempt.__dict__, "drift_type": attempt.drift_type.value, "now": now}
            row = await (await conn.execute(_INSERT_ATTEMPT, params)).fetchone()
        if row is None:  # inserted before by an earlier pass of the same reconcile
            return await self.pending_attempt(attempt.remediation_uid)
        return _attempt(row)

    async def finish_attempt(self, remediation_uid: str, number: int, outcome: AttemptOutcome, now: datetime) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_FINISH_ATTEMPT, (outcome.value, now, remediation_uid, number))

    async def set_reset_points(self, points: dict[str, datetime]) -> None:
        if not points:
            return
        async with self.pool.connection() as conn, conn.cursor() as cursor:
            await cursor.executemany(_SET_RESET, list(points.items()))
