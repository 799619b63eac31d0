"""The remediation ledger on a real PostgreSQL: records, attempts with limits, counter resets."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from controller.api.assignment import DriftType
from controller.api.policy import RemediationLimits
from controller.remediation.backoff import AttemptOutcome
from controller.remediation.ledger import NewAttempt, PgLedger, RecordInfo
from controller.storage.db import Pool
from tests.remediation.inmemory import NOW

S = timedelta(seconds=1)
V = DriftType.VERSION_MISMATCH


def attempt(number: int = 1, uid: str = "r1", app: str = "web", ring: int = 0, asg: str = "a1") -> NewAttempt:
    return NewAttempt(asg, V, number, uid, f"rem-{uid}", app, ring, "Update")


async def test_records_are_noted_once_saved_and_read_back(db_pool: Pool) -> None:
    ledger = PgLedger(db_pool)
    record = RecordInfo(
        "default", "fix", "cid", NOW, assignment_uid="a1", drift_type="VersionMismatch", opened_by_loop=True
    )
    await ledger.note_opened(record)
    await ledger.note_opened(RecordInfo("default", "fix", "other", NOW))  # first note wins
    assert await ledger.record_for("default", "fix") == record
    assert await ledger.record_for("default", "nope") is None
    closed = RecordInfo(**{**record.__dict__, "uid": "u1", "phase": "Succeeded", "closed_at": NOW + S})
    await ledger.save_record(closed)
    await ledger.save_record(RecordInfo("default", "other", "c2", NOW, uid="u2", assignment_uid="a1"))
    found = await ledger.records([("default", "fix"), ("default", "other"), ("x", "y")])
    assert found[("default", "fix")] == closed and set(found) == {("default", "fix"), ("default", "other")}
    assert await ledger.records([]) == {}
    assert (await ledger.open_for_assignment("a1", ("", ""))).name == "other"  # type: ignore[union-attr]
    assert await ledger.open_for_assignment("a1", ("default", "other")) is None


async def test_attempts_count_finish_and_show_in_the_history(db_pool: Pool) -> None:
    ledger = PgLedger(db_pool)
    limits = RemediationLimits()
    first = await ledger.start_attempt(attempt(1), limits, NOW, 3600)
    assert first is not None and (first.number, first.outcome, first.action) == (1, AttemptOutcome.PENDING, "Update")
    again = await ledger.start_attempt(attempt(1), limits, NOW + S, 3600)  # the same pass again: the same row
    assert again == first
    assert await ledger.pending_attempt("r1") == first
    await ledger.finish_attempt("r1", 1, AttemptOutcome.FAILED, NOW + 5 * S)
    await ledger.finish_attempt("r1", 1, AttemptOutcome.VERIFIED, NOW + 6 * S)  # only a pending one finishes
    assert await ledger.pending_attempt("r1") is None
    history, reset = await ledger.history("a1")
    assert [(a.number, a.outcome, a.finished_at) for a in history] == [(1, AttemptOutcome.FAILED, NOW + 5 * S)]
    assert reset is None
    await ledger.set_reset_points({"a1": NOW + 10 * S})
    await ledger.set_reset_points({"a1": NOW + 5 * S})  # a reset never moves back
    await ledger.set_reset_points({})
    assert (await ledger.history("a1"))[1] == NOW + 10 * S


async def test_concurrency_and_hourly_limits_hold_under_concurrent_starts(db_pool: Pool) -> None:
    ledger = PgLedger(db_pool)
    limits = RemediationLimits(max_concurrent_per_ring=2, max_concurrent_per_app=5, max_per_hour=10)
    started = await asyncio.gather(
        *(
            ledger.start_attempt(attempt(1, uid=f"r{i}", app=f"app{i}", asg=f"a{i}"), limits, NOW, 3600)
            for i in range(6)
        )
    )
    assert sum(1 for s in started if s is not None) == 2
    counts = await ledger.rate_counts("app0", 0, NOW, 3600)
    assert (counts.in_ring, counts.last_hour) == (2, 2)
    assert (await ledger.rate_counts("app0", 0, NOW + timedelta(hours=2), 60)).in_ring == 0  # stale ones expire
    per_app = RemediationLimits(max_concurrent_per_ring=50, max_concurrent_per_app=1, max_per_hour=10)
    assert await ledger.start_attempt(attempt(1, uid="x1", app="solo", ring=1), per_app, NOW, 3600) is not None
    assert await ledger.start_attempt(attempt(1, uid="x2", app="solo", ring=2), per_app, NOW, 3600) is None
    hourly = RemediationLimits(max_concurrent_per_ring=50, max_concurrent_per_app=50, max_per_hour=3)
    assert await ledger.start_attempt(attempt(1, uid="h1", app="h", ring=3), hourly, NOW, 3600) is None
