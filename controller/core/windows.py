"""Change windows: whether a change may run now in a ring, and until when the answer holds.

Pure, over the policy's `windows` (allow and deny schedules, each in its own IANA time zone).
A deny window covering now closes; otherwise, when allow windows govern the ring and purpose,
one of them must cover now (docs/domain.md §2). Used by remediation, and by orchestration for
rollouts and approval windows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from controller.api.policy import ChangeWindow, Weekday, WindowKind, WindowPurpose

_WEEKDAYS: tuple[Weekday, ...] = tuple(Weekday)
#: How far ahead to look for the next opening of an allow window.
_HORIZON_DAYS = 8


@dataclass(frozen=True)
class WindowVerdict:
    """`open` says whether a change may run now; `window` names the window that decided."""

    open: bool
    reason: str
    window: str | None = None
    until: datetime | None = None


def occurrences(window: ChangeWindow, start: datetime, days: int) -> Iterator[tuple[datetime, datetime]]:
    """(opens, closes) of `window` for local dates from the day before `start`, for `days` days, in UTC."""
    zone = ZoneInfo(window.timezone)
    first = start.astimezone(zone).date() - timedelta(days=1)
    for offset in range(days + 1):
        day = first + timedelta(days=offset)
        if _WEEKDAYS[day.weekday()] not in window.days:
            continue
        opens = datetime.combine(day, window.start, zone)
        close_day = day if window.end > window.start else day + timedelta(days=1)
        closes = datetime.combine(close_day, window.end, zone)
        yield opens.astimezone(UTC), closes.astimezone(UTC)


def covering(window: ChangeWindow, now: datetime) -> tuple[datetime, datetime] | None:
    """The occurrence of `window` that covers `now`, if any."""
    return next(((o, c) for o, c in occurrences(window, now, 2) if o <= now < c), None)


def next_opening(window: ChangeWindow, now: datetime) -> datetime | None:
    """When `window` next opens after `now` (within about a week)."""
    return next((o for o, _ in occurrences(window, now, _HORIZON_DAYS) if o > now), None)


def governing(
    windows: Sequence[ChangeWindow], ring: int, purpose: WindowPurpose
) -> tuple[list[ChangeWindow], list[ChangeWindow]]:
    """The allow and deny windows that apply to `ring` and `purpose`."""
    relevant = [w for w in windows if ring in w.rings and purpose in w.applies_to]
    return [w for w in relevant if w.kind is WindowKind.ALLOW], [w for w in relevant if w.kind is WindowKind.DENY]


def window_verdict(windows: Sequence[ChangeWindow], ring: int, purpose: WindowPurpose, now: datetime) -> WindowVerdict:
    """May a `purpose` change run in `ring` at `now`?"""
    allow, deny = governing(windows, ring, purpose)
    for window in deny:
        hit = covering(window, now)
        if hit is not None:
            until = hit[1]
            return WindowVerdict(
                False,
                f"deny window {window.name!r} covers now (until {until.isoformat()})",
                window.name,
                until,
            )
    if not allow:
        return WindowVerdict(True, f"no change window governs ring {ring}")
    for window in allow:
        hit = covering(window, now)
        if hit is not None:
            return WindowVerdict(True, f"inside allow window {window.name!r}", window.name, hit[1])
    openings = [(t, w.name) for w in allow if (t := next_opening(w, now)) is not None]
    names = ", ".join(repr(w.name) for w in allow)
    if not openings:
        return WindowVerdict(False, f"outside allow windows {names}", allow[0].name)
    at, name = min(openings)
    return WindowVerdict(False, f"outside allow windows {names}; {name!r} opens {at.isoformat()}", name, at)
