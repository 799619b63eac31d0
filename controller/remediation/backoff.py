"""Anti-thrash: attempt counting, capped exponential backoff, counter resets and flapping.

Pure functions over the attempt history of one Assignment (kept by `ledger`):

- at most `maxAttempts` attempts per drift type; the count only restarts after the Assignment
  stayed in sync for one full check interval (`reset_point`);
- attempt n+1 waits `initialBackoffSeconds * 2**(n-1)`, at most `maxBackoffSeconds`, after attempt n ended;
- flapping: the same drift returning after `flapRecurrences` verified fixes, each within
  `flapWindowIntervals` check intervals, means someone is fighting us: stop instead of thrashing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from controller.api.assignment import DriftType
from controller.api.policy import RemediationLimits


class AttemptOutcome(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    FAILED = "failed"


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt at fixing one drift of one Assignment."""

    number: int
    drift_type: DriftType
    started_at: datetime
    outcome: AttemptOutcome = AttemptOutcome.PENDING
    finished_at: datetime | None = None
    remediation: str = ""
    action: str | None = None
    remediation_uid: str = ""


def backoff_seconds(attempt: int, limits: RemediationLimits) -> int:
    """Delay between the end of attempt `attempt - 1` and the start of `attempt` (0 for the first)."""
    if attempt <= 1:
        return 0
    return int(min(limits.initial_backoff_seconds * 2 ** (attempt - 2), limits.max_backoff_seconds))


def counted(history: Sequence[AttemptRecord], drift_type: DriftType, reset_at: datetime | None) -> list[AttemptRecord]:
    """Attempts at `drift_type` since the counter was last reset, oldest first."""
    return sorted(
        (a for a in history if a.drift_type == drift_type and (reset_at is None or a.started_at > reset_at)),
        key=lambda a: a.started_at,
    )


def next_attempt_at(attempts: Sequence[AttemptRecord], limits: RemediationLimits) -> datetime | None:
    """Earliest start of the next attempt after `attempts` (counted ones), None when no wait applies."""
    if not attempts:
        return None
    last = attempts[-1]
    if last.finished_at is None:
        return None
    return last.finished_at + timedelta(seconds=backoff_seconds(len(attempts) + 1, limits))


def recurrences(history: Sequence[AttemptRecord], drift_type: DriftType, now: datetime, window_seconds: float) -> int:
    """Verified fixes of `drift_type` within `window_seconds` before `now`: each was followed by a return."""
    since = now - timedelta(seconds=window_seconds)
    return sum(
        1
        for a in history
        if a.drift_type == drift_type
        and a.outcome is AttemptOutcome.VERIFIED
        and a.finished_at is not None
        and a.finished_at >= since
    )


def flapping(
    history: Sequence[AttemptRecord],
    drift_type: DriftType,
    now: datetime,
    limits: RemediationLimits,
    interval_seconds: float,
) -> int | None:
    """The number of recurrences when the drift is flapping, else None."""
    count = recurrences(history, drift_type, now, limits.flap_window_intervals * interval_seconds)
    return count if count >= limits.flap_recurrences else None


def reset_point(synced_since: datetime | None, interval_seconds: float, now: datetime) -> datetime | None:
    """The time from which attempts count anew: when the Assignment completed a full synced interval."""
    if synced_since is None:
        return None
    point = synced_since + timedelta(seconds=interval_seconds)
    return point if point <= now else None


def poll_seconds(limits: RemediationLimits) -> float:
    """How often an acting or verifying Remediation looks again: a quarter of the settle time, 0.5-5 s."""
    return min(5.0, max(0.5, limits.settle_seconds / 4))


#: A fix no worker has taken up after this many polls (and at least `MIN_ACT_LEASE_SECONDS`) is sent again:
#: the message was lost, or it sat in the buffer of a worker that died before it acked.
ACT_LEASE_POLLS = 20
MIN_ACT_LEASE_SECONDS = 10.0


def act_lease_seconds(limits: RemediationLimits) -> float:
    """How long a handed-over fix may stay unclaimed before its message is sent again (never past the timeout)."""
    return min(float(limits.timeout_seconds), max(MIN_ACT_LEASE_SECONDS, ACT_LEASE_POLLS * poll_seconds(limits)))


def stale_seconds(limits: RemediationLimits) -> float:
    """An attempt pending longer than this no longer counts against the concurrency limits."""
    return float(limits.timeout_seconds + limits.verify_timeout_seconds + limits.settle_seconds + 60)
