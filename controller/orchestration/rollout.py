"""The ring-by-ring part of the state machine: approval wait, windows, Deploy, Monitor and the gate, rollback.

Pure over `Transitions`. `rollout` walks rings 0..maxRing in order and stops at the first one that
is not finished; a CAB-gated ring waits in AwaitApproval (persisted, with the review deadline); an
approval's `maxRing` stops the rollout with `StoppedByApproval`; a failed gate starts the automatic
rollback of every ring already updated (`rollback`, no CAB). `withdraw` runs an `action: Rollback` task.
"""

from __future__ import annotations

from datetime import timedelta

from controller.api.deploymenttask import (
    GateResult,
    StepName,
    StepState,
    TaskPhase,
)
from controller.orchestration.approvals import (
    Progress,
    absorb_decision,
    approved_conditions,
    await_approval,
    stop,
)
from controller.orchestration.attempts import dispatch, run_actor_step
from controller.orchestration.facts import Facts, TaskView
from controller.orchestration.gates import GateSettings, Poll, judge, next_poll_at, settings_for, window_block
from controller.orchestration.steps import (
    DEPLOY_RING_ACTOR,
    MAX_POLL_ERRORS,
    POLL_RING_ACTOR,
    ROLLBACK_RING_ACTOR,
    DeployReport,
    PollReport,
    RollbackReport,
    StepFailure,
    lease_seconds,
    step_key,
)
from controller.orchestration.transitions import Transitions

#: Longest wait for a change window before looking again.
WINDOW_POLL_SECONDS = 60.0


def cancellable(t: Transitions) -> bool:
    """A safe point: no Deploy or Rollback is running and no rollback is under way."""
    if t.status.phase is TaskPhase.ROLLING_BACK:
        return False
    return not any(
        s.state is StepState.RUNNING and s.name in (StepName.DEPLOY, StepName.ROLLBACK) for s in t.status.steps
    )


def cancel(t: Transitions) -> None:
    done = [r.ring for r in t.status.rings if r.gate is GateResult.PASSED and r.deployed_at is not None]
    kept = f"; rings {', '.join(map(str, done))} keep the new version" if done else ""
    t.phase(TaskPhase.CANCELLED, "Cancelled", f"Cancelled at a safe point (spec.cancel){kept}")


def _progress(t: Transitions) -> None:
    plan = t.status.plan
    if plan is None:
        return
    passed = sum(1 for r in t.status.rings if r.gate is GateResult.PASSED and r.ring <= plan.max_ring)
    t.set(progress=f"{passed}/{plan.max_ring + 1}")


def rollout(t: Transitions, task: TaskView, facts: Facts) -> None:
    plan, assessment = t.status.plan, t.status.risk
    assert plan is not None
    assert assessment is not None
    for ring in range(plan.max_ring + 1):
        _progress(t)
        if t.ring(ring).gate is GateResult.PASSED:
            continue
        t.set(current_ring=ring)
        if plan.targets[ring] == 0:
            t.put_ring(t.ring(ring).model_copy(update={"gate": GateResult.PASSED, "message": "No targets"}))
            t.note("RingSkipped", f"Ring {ring} has no targets of {plan.app}", ring=ring)
            continue
        if absorb_decision(t, facts) is Progress.END:
            return
        gated = assessment.cab_from_ring is not None and ring >= assessment.cab_from_ring
        if gated and await_approval(t, task, facts, ring) is not Progress.NEXT:
            return
        limit = approved_conditions(t)
        if limit is not None and limit.max_ring is not None and ring > limit.max_ring:
            stop(t, limit.max_ring)
            return
        step = _ring(t, task, facts, ring)
        if step is not Progress.NEXT:
            return
    _progress(t)
    t.set(current_step=None)
    t.phase(
        TaskPhase.SUCCEEDED,
        "RolloutSucceeded",
        f"{plan.app} {plan.version} passed the gates of rings 0-{plan.max_ring} ({sum(plan.targets)} targets)",
    )


def _ring(t: Transitions, task: TaskView, facts: Facts, ring: int) -> Progress:
    plan = t.status.plan
    assert plan is not None
    deploy = t.step(StepName.DEPLOY, ring)
    if deploy.state is not StepState.SUCCEEDED:
        if deploy.attempts == 0:
            block = window_block(ring, facts.policy, approved_conditions(t), t.now)
            if block is not None:
                message = f"Ring {ring}: {block.message}"
                t.condition("WaitingForWindow", True, "OutsideChangeWindow", message)
                t.set(current_step=f"{StepName.DEPLOY.value} (window)")
                t.phase(TaskPhase.DEPLOYING, "WaitingForWindow", message)
                latest = t.now + timedelta(seconds=WINDOW_POLL_SECONDS)
                t.wake(min(block.retry_at, latest) if block.retry_at is not None else latest)
                return Progress.WAIT
            if any(c.type == "WaitingForWindow" for c in task.status.conditions):
                t.condition("WaitingForWindow", False, "InsideChangeWindow", f"Ring {ring} may be deployed now")
        t.set(current_step=StepName.DEPLOY.value)
        t.phase(TaskPhase.DEPLOYING, "Deploying", f"Deploying {plan.version} to ring {ring}")
        run = run_actor_step(
            t,
            task,
            facts,
            StepName.DEPLOY,
            ring,
            DEPLOY_RING_ACTOR,
            {"app": plan.app, "version": plan.version, "artifact": plan.artifact, "plane": plan.plane.value},
            DeployReport,
        )
        if run.state == "failed":
            t.phase(TaskPhase.FAILED, "StepFailed", run.message)
            return Progress.END
        if run.state == "waiting" or run.report is None:
            return Progress.WAIT
        deployed = run.report
        t.put_ring(t.ring(ring).model_copy(update={"deployed_at": deployed.at or t.now, "healthy_since": None}))
        t.note(
            "RingDeployed",
            f"Deployed {plan.version} to ring {ring}: {deployed.targets} targets, "
            f"{deployed.changed} changed, {deployed.assignments} Assignments written",
            ring=ring,
        )
    t.set(current_step=StepName.MONITOR.value)
    t.phase(TaskPhase.MONITORING, "Monitoring", f"Monitoring ring {ring}")
    settings = settings_for(ring, task.spec, facts.policy, approved_conditions(t))
    return _monitor(t, task, facts, ring, settings)


def _monitor(t: Transitions, task: TaskView, facts: Facts, ring: int, settings: GateSettings) -> Progress:
    plan = t.status.plan
    assert plan is not None
    step = t.step(StepName.MONITOR, ring)
    if step.state is StepState.PENDING:
        step = t.put_step(step.model_copy(update={"state": StepState.RUNNING, "started_at": t.now}))
        t.note(
            "MonitorStarted",
            f"Monitoring ring {ring}: gate {settings.threshold:.2%}, soak {settings.soak_seconds}s, "
            f"poll every {settings.poll_interval_seconds}s",
            ring=ring,
        )
    if step.key:
        claim = facts.claims.get(step.key)
        report = claim.report(PollReport) if claim is not None else None
        if report is None:
            if step.next_attempt_at is not None and t.now >= step.next_attempt_at:
                # The poll never reported (lost message or silent worker): poll again under a new key.
                return _dispatch_poll(t, task, facts, ring, step.attempts + 1)
            t.wake_for_report(step, lease_seconds(task.spec.monitor.poll_interval_seconds, facts.queued_steps))
            return Progress.WAIT
        progress = t.ring(ring)
        t.put_step(step.model_copy(update={"key": None, "next_attempt_at": None}))
        if isinstance(report, StepFailure):
            errors = progress.poll_errors + 1
            t.put_ring(progress.model_copy(update={"poll_errors": errors, "last_polled_at": report.at or t.now}))
            if errors >= MAX_POLL_ERRORS:
                message = f"Health of ring {ring} is unknown after {errors} failed polls: {report.error}"
                t.close_step(t.step(StepName.MONITOR, ring), StepState.FAILED, message)
                t.phase(TaskPhase.FAILED, "HealthUnavailable", message)
                return Progress.END
        else:
            poll = Poll(
                at=report.at or t.now,
                targets=report.targets,
                updated=report.updated,
                healthy=report.healthy,
                failed=report.failed,
            )
            verdict = judge(progress.model_copy(update={"poll_errors": 0}), poll, settings)
            t.put_ring(verdict.progress)
            if verdict.result is GateResult.PASSED:
                t.close_step(t.step(StepName.MONITOR, ring), StepState.SUCCEEDED, verdict.message)
                t.note("GatePassed", verdict.message, ring=ring)
                return Progress.NEXT
            if verdict.result is GateResult.FAILED:
                t.close_step(t.step(StepName.MONITOR, ring), StepState.FAILED, verdict.message)
                t.note(verdict.reason, verdict.message, ring=ring)
                t.phase(
                    TaskPhase.ROLLING_BACK,
                    "RollbackStarted",
                    f"{verdict.message}; rolling back every ring already updated (no CAB)",
                )
                rollback(t, task, facts)
                return Progress.END
            t.put_step(t.step(StepName.MONITOR, ring).model_copy(update={"message": verdict.message[:2048]}))
    due = next_poll_at(t.ring(ring), settings)
    if due is not None and t.now < due:
        t.wake(due)
        return Progress.WAIT
    return _dispatch_poll(t, task, facts, ring, t.step(StepName.MONITOR, ring).attempts + 1)


def _dispatch_poll(t: Transitions, task: TaskView, facts: Facts, ring: int, number: int) -> Progress:
    plan = t.status.plan
    assert plan is not None
    step = t.step(StepName.MONITOR, ring)
    key = step_key(task.correlation_id, task.uid, StepName.MONITOR, ring, number, "poll")
    lease = lease_seconds(task.spec.monitor.poll_interval_seconds, facts.queued_steps)
    step = t.put_step(
        step.model_copy(update={"attempts": number, "key": key, "next_attempt_at": t.now + timedelta(seconds=lease)})
    )
    dispatch(t, task, step, POLL_RING_ACTOR, {"app": plan.app, "version": plan.version, "plane": plan.plane.value})
    t.wake_in(lease)
    return Progress.WAIT


def _updated_rings(t: Transitions) -> list[int]:
    deployed = {s.ring for s in t.status.steps if s.name is StepName.DEPLOY and s.attempts > 0}
    return sorted((r for r in deployed if r is not None), reverse=True)


def rollback(t: Transitions, task: TaskView, facts: Facts) -> None:
    """Roll back every ring this task updated, highest first; then RolledBack."""
    plan = t.status.plan
    assert plan is not None
    t.set(current_step=StepName.ROLLBACK.value)
    rings = _updated_rings(t)
    for ring in rings:
        if not _rollback_ring(t, task, facts, ring, "task"):
            return
    failed = next((s for s in t.status.steps if s.name is StepName.MONITOR and s.state is StepState.FAILED), None)
    cause = failed.message if failed is not None and failed.message else "A ring gate failed"
    t.set(current_step=None)
    t.phase(
        TaskPhase.ROLLED_BACK,
        "GateFailed",
        f"{cause}; rolled back rings {', '.join(map(str, rings))} to their previous version",
    )


def withdraw(t: Transitions, task: TaskView, facts: Facts) -> None:
    """`action: Rollback`: return every target running spec.version to its previous recorded version."""
    plan = t.status.plan
    assert plan is not None
    t.set(current_step=StepName.ROLLBACK.value)
    rings = [r for r in range(plan.max_ring, -1, -1) if plan.targets[r] > 0]
    for ring in rings:
        if not _rollback_ring(t, task, facts, ring, "version"):
            return
    t.set(current_step=None)
    t.phase(
        TaskPhase.ROLLED_BACK,
        "RollbackCompleted",
        f"Rolled {plan.app} back from {plan.version} to the previous recorded version in rings "
        f"{', '.join(map(str, rings))}",
    )


def _rollback_ring(t: Transitions, task: TaskView, facts: Facts, ring: int, scope: str) -> bool:
    plan = t.status.plan
    assert plan is not None
    if t.status.phase is not TaskPhase.ROLLING_BACK:
        t.phase(TaskPhase.ROLLING_BACK, "RollbackStarted", f"Rolling back {plan.app} {plan.version}")
    run = run_actor_step(
        t,
        task,
        facts,
        StepName.ROLLBACK,
        ring,
        ROLLBACK_RING_ACTOR,
        {"app": plan.app, "version": plan.version, "plane": plan.plane.value, "scope": scope},
        RollbackReport,
    )
    if run.state == "failed":
        t.phase(TaskPhase.FAILED, "RollbackFailed", run.message)
        return False
    if run.state == "waiting":
        return False
    if run.report is not None:
        t.put_ring(t.ring(ring).model_copy(update={"rolled_back": True}))
        t.note(
            "RingRolledBack",
            f"Rolled back ring {ring}: {run.report.changed} of {run.report.targets} targets restored",
            ring=ring,
        )
    return True
