"""Anti-thrash: backoff 1 h / 2 h / 4 h capped, counters that reset after a synced interval, flapping."""

from __future__ import annotations

from datetime import timedelta

from controller.api.assignment import DriftType
from controller.api.policy import RemediationLimits
from controller.remediation.backoff import (
    AttemptOutcome,
    AttemptRecord,
    backoff_seconds,
    counted,
    flapping,
    next_attempt_at,
    recurrences,
    reset_point,
)
from tests.remediation.inmemory import NOW

LIMITS = RemediationLimits()
V = DriftType.VERSION_MISMATCH


def attempt(
    number: int,
    minutes_ago: float,
    outcome: AttemptOutcome = AttemptOutcome.FAILED,
    kind: DriftType = V,
    took_minutes: float = 1,
) -> AttemptRecord:
    started = NOW - timedelta(minutes=minutes_ago)
    finished = None if outcome is AttemptOutcome.PENDING else started + timedelta(minutes=took_minutes)
    return AttemptRecord(number, kind, started, outcome, finished)


def test_the_domain_backoff_is_1h_2h_4h_and_capped() -> None:
    assert [backoff_seconds(n, LIMITS) for n in (1, 2, 3, 4, 5)] == [0, 3600, 7200, 14400, 14400]
    scaled = RemediationLimits(initial_backoff_seconds=1, max_backoff_seconds=3)
    assert [backoff_seconds(n, scaled) for n in (2, 3, 4)] == [1, 2, 3]


def test_the_next_attempt_waits_from_the_end_of_the_last() -> None:
    history = [attempt(1, 100), attempt(2, 30)]
    assert next_attempt_at([], LIMITS) is None
    assert next_attempt_at(history, LIMITS) == history[1].finished_at + timedelta(hours=2)
    assert next_attempt_at([attempt(1, 5, AttemptOutcome.PENDING)], LIMITS) is None


def test_attempts_count_per_drift_type_since_the_last_reset() -> None:
    history = [attempt(1, 300), attempt(2, 200), attempt(1, 100, kind=DriftType.SERVICE_DOWN), attempt(3, 50)]
    assert [a.number for a in counted(history, V, None)] == [1, 2, 3]
    assert [a.number for a in counted(history, V, NOW - timedelta(minutes=150))] == [3]


def test_the_counter_resets_only_after_a_full_synced_interval() -> None:
    assert reset_point(None, 900, NOW) is None
    assert reset_point(NOW - timedelta(seconds=899), 900, NOW) is None
    assert reset_point(NOW - timedelta(seconds=1000), 900, NOW) == NOW - timedelta(seconds=100)


def test_flapping_needs_recurrences_after_verified_fixes_within_the_window() -> None:
    limits = RemediationLimits(flap_window_intervals=3, flap_recurrences=2)
    one = [attempt(1, 20, AttemptOutcome.VERIFIED)]
    two = [*one, attempt(2, 10, AttemptOutcome.VERIFIED)]
    assert flapping(one, V, NOW, limits, 900) is None
    assert flapping(two, V, NOW, limits, 900) == 2
    assert flapping(two, V, NOW, limits, 60) is None  # the window is 3 minutes: both fixes are older
    assert recurrences([*two, attempt(3, 5)], V, NOW, 3600) == 2  # failed attempts are not fixes
    assert recurrences(two, DriftType.SERVICE_DOWN, NOW, 3600) == 0
