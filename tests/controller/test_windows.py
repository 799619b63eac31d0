"""Change windows: allow and deny schedules, time zones, overnight and whole-day windows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controller.api.policy import ChangeWindow, WindowKind, WindowPurpose
from controller.core.windows import covering, governing, next_opening, window_verdict

REMEDIATE = WindowPurpose.REMEDIATE


def window(**values: Any) -> ChangeWindow:
    values.setdefault("name", "w")
    return ChangeWindow.model_validate(values)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_without_windows_changes_may_run() -> None:
    verdict = window_verdict([], 0, REMEDIATE, at("2026-11-25T12:00:00+00:00"))
    assert verdict.open and verdict.window is None


def test_a_deny_window_covering_now_closes_and_names_itself_and_its_end() -> None:
    freeze = window(name="freeze", kind="deny", start="10:00", end="14:00")
    verdict = window_verdict([freeze], 0, REMEDIATE, at("2026-11-25T12:00:00+00:00"))
    assert not verdict.open
    assert verdict.window == "freeze"
    assert verdict.until == at("2026-11-25T14:00:00+00:00")
    assert "deny window 'freeze' covers now" in verdict.reason
    assert window_verdict([freeze], 0, REMEDIATE, at("2026-11-25T14:00:00+00:00")).open


def test_allow_windows_open_only_inside_and_say_when_the_next_opens() -> None:
    nights = window(
        name="nights", start="22:00", end="04:00", timezone="Europe/Berlin", days=["Mon", "Tue", "Wed", "Thu"]
    )
    inside = window_verdict([nights], 3, REMEDIATE, at("2026-11-25T02:30:00+01:00"))  # Wednesday, opened Tuesday
    assert inside.open and inside.window == "nights" and inside.until == at("2026-11-25T04:00:00+01:00")
    outside = window_verdict([nights], 3, REMEDIATE, at("2026-11-25T12:00:00+01:00"))
    assert not outside.open
    assert outside.until == at("2026-11-25T22:00:00+01:00")
    assert "outside allow windows 'nights'" in outside.reason
    friday = window_verdict([nights], 3, REMEDIATE, at("2026-11-27T23:00:00+01:00"))
    assert not friday.open and friday.until == at("2026-11-30T22:00:00+01:00")  # next Monday


def test_a_deny_window_wins_over_an_allow_window() -> None:
    allow = window(name="always", start="00:00", end="00:00")
    deny = window(name="freeze", kind="deny", start="00:00", end="00:00", days=["Wed"])
    verdict = window_verdict([allow, deny], 1, REMEDIATE, at("2026-11-25T12:00:00+00:00"))
    assert (verdict.open, verdict.window) == (False, "freeze")
    assert window_verdict([allow, deny], 1, REMEDIATE, at("2026-11-26T12:00:00+00:00")).open


def test_windows_apply_only_to_their_rings_and_purposes() -> None:
    freeze = window(name="freeze", kind="deny", start="00:00", end="00:00", rings=[2, 3], applies_to=["deploy"])
    now = at("2026-11-25T12:00:00+00:00")
    assert window_verdict([freeze], 2, REMEDIATE, now).open
    assert not window_verdict([freeze], 2, WindowPurpose.DEPLOY, now).open
    assert window_verdict([freeze], 0, WindowPurpose.DEPLOY, now).open
    allow, deny = governing([freeze], 3, WindowPurpose.DEPLOY)
    assert (allow, [w.name for w in deny]) == ([], ["freeze"])


def test_time_zones_move_the_window_in_utc() -> None:
    tokyo = window(name="tokyo", kind="deny", start="09:00", end="17:00", timezone="Asia/Tokyo")
    assert covering(tokyo, at("2026-11-25T01:00:00+00:00")) is not None  # 10:00 in Tokyo
    assert covering(tokyo, at("2026-11-25T09:00:00+00:00")) is None  # 18:00 in Tokyo


def test_an_allow_window_that_never_opens_still_closes() -> None:
    never = window(name="never", days=[], start="01:00", end="02:00")
    verdict = window_verdict([never], 0, REMEDIATE, at("2026-11-25T12:00:00+00:00"))
    assert not verdict.open and verdict.until is None
    assert next_opening(never, at("2026-11-25T12:00:00+00:00")) is None


def test_the_policy_model_defaults_keep_old_windows_meaning_allow_for_everything() -> None:
    old = window(start="22:00", end="04:00")
    assert old.kind is WindowKind.ALLOW and old.applies_to == [WindowPurpose.DEPLOY, WindowPurpose.REMEDIATE]
