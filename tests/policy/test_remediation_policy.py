"""The policy file's remediation limits and change windows (allow/deny, what they apply to)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from controller.api.policy import PolicyError, WindowKind, WindowPurpose, load_policy

SHIPPED = Path(__file__).parents[2] / "controller" / "policy" / "dev.yaml"


def write(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load(SHIPPED.read_text())
    data.update(changes)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_shipped_policy_scales_the_domain_limits_for_a_demo() -> None:
    limits = load_policy(None).remediation
    assert (limits.max_attempts, limits.autonomous_max_ring) == (3, 1)
    assert (limits.max_concurrent_per_ring, limits.max_concurrent_per_app, limits.max_per_hour) == (5, 3, 20)
    assert [limits.check_interval_for(c) for c in ("critical", "high", "standard", "low")] == [60, 120, 300, 900]


def test_left_out_limits_are_the_domain_values(tmp_path: Path) -> None:
    limits = load_policy(write(tmp_path, remediation={})).remediation
    assert [limits.check_interval_for(c) for c in ("critical", "high", "standard", "low")] == [900, 1800, 3600, 14400]
    assert (limits.initial_backoff_seconds, limits.max_backoff_seconds) == (3600, 14400)
    assert (limits.settle_seconds, limits.flap_window_intervals, limits.flap_recurrences) == (300, 3, 2)


def test_windows_say_allow_or_deny_and_what_they_apply_to(tmp_path: Path) -> None:
    windows = [
        {
            "name": "freeze",
            "kind": "deny",
            "appliesTo": ["remediate"],
            "rings": [0, 1],
            "start": "00:00",
            "end": "00:00",
            "timezone": "Europe/Berlin",
        },
        {"name": "nights", "start": "22:00", "end": "04:00"},
    ]
    freeze, nights = load_policy(write(tmp_path, windows=windows)).windows
    assert (freeze.kind, freeze.applies_to) == (WindowKind.DENY, [WindowPurpose.REMEDIATE])
    assert (nights.kind, nights.applies_to) == (WindowKind.ALLOW, [WindowPurpose.DEPLOY, WindowPurpose.REMEDIATE])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"windows": [{"name": "w", "kind": "maybe", "start": "01:00", "end": "02:00"}]},
            "windows.0.kind: Input should be 'allow' or 'deny'",
        ),
        (
            {"windows": [{"name": "w", "appliesTo": ["reboot"], "start": "01:00", "end": "02:00"}]},
            "windows.0.appliesTo.0: Input should be 'deploy' or 'remediate'",
        ),
        (
            {"remediation": {"checkIntervalSeconds": {"critical": 0}}},
            "remediation.checkIntervalSeconds.critical: Input should be greater than or equal to 1",
        ),
        (
            {"remediation": {"maxConcurrentPerRing": 0}},
            "remediation.maxConcurrentPerRing: Input should be greater than or equal to 1",
        ),
        (
            {"remediation": {"verifyTimeoutSeconds": 0}},
            "remediation.verifyTimeoutSeconds: Input should be greater than 0",
        ),
    ],
)
def test_bad_remediation_settings_name_the_field(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    path = write(tmp_path, **changes)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert f"{path}: {message}" in str(raised.value).splitlines()
