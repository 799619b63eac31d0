"""Ring gates: stricter-of thresholds, soak, failure and timeout, rollbackBelow, change windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from controller.api.deploymenttask import (
    ApprovalConditions,
    ChangeWindow,
    DeploymentTaskSpec,
    GateResult,
    RingProgress,
)
from controller.api.policy import Policy, Weekday, load_policy
from controller.orchestration.gates import (
    GateSettings,
    Poll,
    approval_windows,
    judge,
    next_poll_at,
    settings_for,
    window_block,
)

POLICY = load_policy()
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday


def task_spec(**extra: Any) -> DeploymentTaskSpec:
    return DeploymentTaskSpec.model_validate({"app": "shop", "version": "2.0.0", "maxRing": 2, **extra})


def settings(**extra: Any) -> GateSettings:
    base = {
        "ring": 1,
        "threshold": 0.98,
        "soak_seconds": 10,
        "poll_interval_seconds": 2,
        "deploy_timeout_seconds": 60,
    }
    return GateSettings(**{**base, **extra})


def poll(at_seconds: float, targets: int = 4, updated: int = 4, healthy: int = 4, failed: int = 0) -> Poll:
    return Poll(T0 + timedelta(seconds=at_seconds), targets, updated, healthy, failed)


def deployed() -> RingProgress:
    return RingProgress(ring=1, deployed_at=T0)


def test_settings_take_the_strictest_of_policy_task_override_and_approval() -> None:
    spec = task_spec(
        monitor={"soakSeconds": 30, "pollIntervalSeconds": 5},
        gates=[{"ring": 1, "successThreshold": 0.99, "soakSeconds": 45}],
    )
    plain = settings_for(1, spec, POLICY, None)
    assert (plain.threshold, plain.soak_seconds, plain.poll_interval_seconds) == (0.99, 45, 5)
    assert plain.rollback_below is None
    looser = task_spec(gates=[{"ring": 1, "successThreshold": 0.5, "soakSeconds": 0}])
    assert settings_for(1, looser, POLICY, None).threshold == 0.98  # an override never loosens
    approval = ApprovalConditions(min_success_rate=0.995, min_soak_seconds=600, rollback_below=0.9)
    strict = settings_for(1, spec, POLICY, approval)
    assert (strict.threshold, strict.soak_seconds, strict.rollback_below) == (0.995, 600, 0.9)
    assert strict.grace_seconds == 5


def test_a_healthy_ring_soaks_then_passes() -> None:
    first = judge(deployed(), poll(1), settings())
    assert first.result is GateResult.SOAKING
    assert first.progress.healthy_since == T0 + timedelta(seconds=1)
    assert first.progress.complete_at == T0 + timedelta(seconds=1)
    assert first.progress.success_rate == 1.0
    assert first.message.startswith("Soaking 0s of 10s")
    second = judge(first.progress, poll(11), settings())
    assert second.result is GateResult.PASSED
    assert second.reason == "GatePassed"
    assert second.progress.polls == 2
    assert second.progress.gate is GateResult.PASSED


def test_zero_soak_passes_on_the_first_healthy_poll() -> None:
    assert judge(deployed(), poll(0), settings(soak_seconds=0)).result is GateResult.PASSED


def test_a_dip_below_the_threshold_restarts_the_soak() -> None:
    first = judge(deployed(), poll(1), settings())
    dip = judge(first.progress, poll(3, healthy=3), settings())
    assert dip.result is GateResult.SOAKING
    assert dip.progress.healthy_since is None
    back = judge(dip.progress, poll(5), settings())
    assert back.progress.healthy_since == T0 + timedelta(seconds=5)


def test_an_unhealthy_complete_ring_fails_after_the_observation_window() -> None:
    s = settings(soak_seconds=3)
    first = judge(deployed(), poll(1, healthy=2, failed=2), s)
    assert first.result is GateResult.SOAKING
    assert first.message.startswith("Waiting for ring 1")
    failed = judge(first.progress, poll(4, healthy=2, failed=2), s)
    assert failed.result is GateResult.FAILED
    assert failed.reason == "GateFailed"
    assert "2/4 healthy" in failed.message and "98.0%" in failed.message


def test_an_incomplete_rollout_fails_at_the_deploy_timeout() -> None:
    still = judge(deployed(), poll(30, updated=1, healthy=1), settings())
    assert still.result is GateResult.SOAKING
    timed_out = judge(still.progress, poll(61, updated=1, healthy=1), settings())
    assert timed_out.result is GateResult.FAILED
    assert timed_out.reason == "RolloutTimedOut"


def test_the_approvals_rollback_below_fails_fast_after_one_poll_interval() -> None:
    s = settings(rollback_below=0.9, soak_seconds=600)
    first = judge(deployed(), poll(1, healthy=3, failed=1), s)
    assert first.result is GateResult.SOAKING
    second = judge(first.progress, poll(3, healthy=3, failed=1), s)
    assert second.result is GateResult.FAILED
    assert second.reason == "BelowRollbackThreshold"


def test_a_ring_without_targets_passes() -> None:
    verdict = judge(deployed(), poll(0, targets=0, updated=0, healthy=0), settings())
    assert verdict.result is GateResult.PASSED
    assert verdict.progress.success_rate is None


def test_next_poll_is_one_interval_after_the_last() -> None:
    assert next_poll_at(RingProgress(ring=0), settings()) is None
    progress = RingProgress(ring=0, last_polled_at=T0)
    assert next_poll_at(progress, settings()) == T0 + timedelta(seconds=2)


def test_a_ring_soaking_healthy_is_polled_again_as_its_soak_ends_not_a_whole_interval_later() -> None:
    soaking = RingProgress(ring=0, last_polled_at=T0, healthy_since=T0)
    assert next_poll_at(soaking, settings(soak_seconds=1, poll_interval_seconds=60)) == T0 + timedelta(seconds=1)
    assert next_poll_at(soaking, settings(soak_seconds=600, poll_interval_seconds=60)) == T0 + timedelta(seconds=60)
    soaked = RingProgress(ring=0, last_polled_at=T0 + timedelta(seconds=5), healthy_since=T0)
    assert next_poll_at(soaked, settings(soak_seconds=1, poll_interval_seconds=60)) == T0 + timedelta(seconds=65)


def policy_with_windows(windows: list[dict[str, Any]]) -> Policy:
    raw = POLICY.model_dump(mode="json", by_alias=True)
    raw["windows"] = windows
    return Policy.model_validate(raw)


def test_policy_windows_block_a_ring_outside_them_and_say_when_they_open() -> None:
    policy = policy_with_windows([{"name": "nights", "rings": [2], "start": "22:00", "end": "04:00"}])
    assert window_block(1, policy, None, T0) is None
    block = window_block(2, policy, None, T0)
    assert block is not None
    assert block.message.startswith("Policy: outside allow windows 'nights'")
    assert block.retry_at == T0.replace(hour=22)
    assert window_block(2, policy, None, T0.replace(hour=23)) is None


def test_approval_windows_also_bind_the_rollout() -> None:
    conditions = ApprovalConditions(windows=[ChangeWindow(days=[Weekday.SAT, Weekday.SUN], start="00:00", end="00:00")])
    block = window_block(0, POLICY, conditions, T0)
    assert block is not None and block.message.startswith("CAB approval:")
    assert block.retry_at == datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
    converted = approval_windows(conditions.windows)
    assert converted[0].days == [Weekday.SAT, Weekday.SUN]
    assert approval_windows([ChangeWindow(start="01:30", end="02:00")])[0].days == list(Weekday)
