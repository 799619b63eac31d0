"""Ring gates: the thresholds a ring must meet, change windows, and the verdict after each health poll.

Pure. `settings_for` merges the policy's ring (docs/domain.md §2: success threshold, minimum soak), the
task's own monitor settings and gate overrides, and the CAB approval's conditions, always taking the
stricter value (an override may tighten a gate, never loosen it). `judge` turns one health poll into
Soaking, Passed or Failed; `window_block` says whether a ring may be entered now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from controller.api.deploymenttask import (
    ApprovalConditions,
    ChangeWindow,
    DeploymentTaskSpec,
    GateResult,
    RingProgress,
)
from controller.api.policy import ChangeWindow as PolicyWindow
from controller.api.policy import Policy, Weekday, WindowPurpose
from controller.core.windows import window_verdict


@dataclass(frozen=True)
class GateSettings:
    """What ring `ring` must show before the rollout moves on."""

    ring: int
    threshold: float
    soak_seconds: int
    poll_interval_seconds: int
    deploy_timeout_seconds: int
    rollback_below: float | None = None

    @property
    def grace_seconds(self) -> int:
        """Observation time after a complete rollout before a low success rate fails the gate."""
        return self.poll_interval_seconds


@dataclass(frozen=True)
class Poll:
    """One health poll of a ring, as the poll actor recorded it."""

    at: datetime
    targets: int
    updated: int
    healthy: int
    failed: int

    @property
    def success_rate(self) -> float | None:
        return None if self.targets == 0 else self.healthy / self.targets


@dataclass(frozen=True)
class GateVerdict:
    """`result` is Soaking (poll again), Passed or Failed; `reason` is a CamelCase event reason."""

    result: GateResult
    progress: RingProgress
    reason: str
    message: str


def settings_for(
    ring: int, spec: DeploymentTaskSpec, policy: Policy, conditions: ApprovalConditions | None
) -> GateSettings:
    """The strictest of policy, task and approval for one ring."""
    base = policy.ring(ring)
    override = next((g for g in spec.gates if g.ring == ring), None)
    thresholds = [base.success_threshold]
    soaks = [base.min_soak_seconds, spec.monitor.soak_seconds]
    if override is not None:
        if override.success_threshold is not None:
            thresholds.append(override.success_threshold)
        if override.soak_seconds is not None:
            soaks.append(override.soak_seconds)
    rollback_below = None
    if conditions is not None:
        if conditions.min_success_rate is not None:
            thresholds.append(conditions.min_success_rate)
        if conditions.min_soak_seconds is not None:
            soaks.append(conditions.min_soak_seconds)
        rollback_below = conditions.rollback_below
    return GateSettings(
        ring=ring,
        threshold=max(thresholds),
        soak_seconds=max(soaks),
        poll_interval_seconds=spec.monitor.poll_interval_seconds,
        deploy_timeout_seconds=spec.monitor.deploy_timeout_seconds,
        rollback_below=rollback_below,
    )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def judge(progress: RingProgress, poll: Poll, settings: GateSettings) -> GateVerdict:
    """The gate after `poll`: passed once healthy for the soak, failed when it cannot recover in time."""
    rate = poll.success_rate
    p = progress.model_copy(
        update={
            "targets": poll.targets,
            "updated": poll.updated,
            "healthy": poll.healthy,
            "failed": poll.failed,
            "success_rate": rate,
            "threshold": settings.threshold,
            "polls": progress.polls + 1,
            "last_polled_at": poll.at,
        }
    )
    counts = f"{poll.healthy}/{poll.targets} healthy, {poll.updated} updated ({_percent(rate)})"
    if rate is None:
        p = p.model_copy(update={"gate": GateResult.PASSED, "message": "No targets in this ring"})
        return GateVerdict(GateResult.PASSED, p, "GatePassed", f"Ring {settings.ring} has no targets")
    if poll.updated >= poll.targets and p.complete_at is None:
        p = p.model_copy(update={"complete_at": poll.at})
    if rate >= settings.threshold:
        since = p.healthy_since or poll.at
        p = p.model_copy(update={"healthy_since": since})
        soaked = (poll.at - since).total_seconds()
        if soaked >= settings.soak_seconds:
            message = f"Ring {settings.ring} passed its gate: {counts} >= {_percent(settings.threshold)}"
            p = p.model_copy(update={"gate": GateResult.PASSED, "message": message})
            return GateVerdict(GateResult.PASSED, p, "GatePassed", message)
        message = f"Soaking {soaked:.0f}s of {settings.soak_seconds}s: {counts}"
        p = p.model_copy(update={"gate": GateResult.SOAKING, "message": message})
        return GateVerdict(GateResult.SOAKING, p, "Soaking", message)
    p = p.model_copy(update={"healthy_since": None})
    failure = _failure(p, poll, settings, counts)
    if failure is not None:
        reason, message = failure
        p = p.model_copy(update={"gate": GateResult.FAILED, "message": message})
        return GateVerdict(GateResult.FAILED, p, reason, message)
    message = f"Waiting for ring {settings.ring}: {counts}, gate {_percent(settings.threshold)}"
    p = p.model_copy(update={"gate": GateResult.SOAKING, "message": message})
    return GateVerdict(GateResult.SOAKING, p, "Soaking", message)


def _failure(p: RingProgress, poll: Poll, settings: GateSettings, counts: str) -> tuple[str, str] | None:
    rate = poll.success_rate or 0.0
    if p.complete_at is not None:
        observed = (poll.at - p.complete_at).total_seconds()
        below = settings.rollback_below
        if below is not None and rate < below and observed >= settings.grace_seconds:
            return "BelowRollbackThreshold", (
                f"Ring {settings.ring} fell below the approval's rollbackBelow {_percent(below)}: {counts}"
            )
        if observed >= max(settings.soak_seconds, settings.grace_seconds):
            return "GateFailed", (
                f"Ring {settings.ring} failed its gate: {counts} < {_percent(settings.threshold)} "
                f"after {observed:.0f}s of observation"
            )
    if p.deployed_at is not None:
        elapsed = (poll.at - p.deployed_at).total_seconds()
        if elapsed >= settings.deploy_timeout_seconds:
            return "RolloutTimedOut", (
                f"Ring {settings.ring} did not reach its gate within {settings.deploy_timeout_seconds}s: {counts}"
            )
    return None


def next_poll_at(progress: RingProgress, settings: GateSettings) -> datetime | None:
    """When the next poll is due (None: now): a poll interval after the last, or sooner when a ring that is
    soaking healthy reaches the end of its soak (that poll can pass the gate)."""
    if progress.last_polled_at is None:
        return None
    due = progress.last_polled_at + timedelta(seconds=settings.poll_interval_seconds)
    if progress.healthy_since is not None:
        soaked = progress.healthy_since + timedelta(seconds=settings.soak_seconds)
        if progress.last_polled_at < soaked:
            due = min(due, soaked)
    return due


def approval_windows(windows: list[ChangeWindow]) -> list[PolicyWindow]:
    """An approval's windows as allow windows of the policy's shape (so one evaluator serves both)."""
    out = []
    for index, window in enumerate(windows):
        start_h, start_m = (int(x) for x in window.start.split(":"))
        end_h, end_m = (int(x) for x in window.end.split(":"))
        out.append(
            PolicyWindow(
                name=f"approval-window-{index + 1}",
                applies_to=[WindowPurpose.DEPLOY],
                days=list(window.days) or list(Weekday),
                start=time(start_h, start_m),
                end=time(end_h, end_m),
                timezone=window.time_zone,
            )
        )
    return out


@dataclass(frozen=True)
class WindowBlock:
    """Why a ring may not be entered now, and when to look again."""

    message: str
    retry_at: datetime | None


def window_block(ring: int, policy: Policy, conditions: ApprovalConditions | None, now: datetime) -> WindowBlock | None:
    """None when ring `ring` may be deployed now: the policy's and the approval's windows both allow it."""
    policy_verdict = window_verdict(policy.windows, ring, WindowPurpose.DEPLOY, now)
    if not policy_verdict.open:
        return WindowBlock(f"Policy: {policy_verdict.reason}", policy_verdict.until)
    if conditions is not None and conditions.windows:
        verdict = window_verdict(approval_windows(conditions.windows), ring, WindowPurpose.DEPLOY, now)
        if not verdict.open:
            return WindowBlock(f"CAB approval: {verdict.reason}", verdict.until)
    return None
