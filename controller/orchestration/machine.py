"""The DeploymentTask state machine: `next_step(task, facts)` picks what happens next.

Pure: spec + status + observed facts in, a `Transitions` (new status, messages to enqueue, the
ChangeRequest to write, Events, audit rows, when to look again) out. Order of the chain:
ValidateIntent (here, synchronously) -> GenerateEvidence (worker) -> SubmitChangeRequest (here;
auto-approval recorded with its rule when no ring in scope needs CAB) -> per ring (rollout.py):
AwaitApproval before the first ring that needs CAB, Deploy (worker), Monitor (worker polls, gate
here) -> Succeeded; a failed gate rolls back every ring already updated -> RolledBack. ValidateIntent
also refuses mutable tags, unlisted registries and loosening gate overrides, and scores the risk
inputs that count (`declaring.declared_risk`; undeclared ones as Unknown).
"""

from __future__ import annotations

from datetime import timedelta

from controller.api.deploymenttask import (
    Action,
    ApprovalRecord,
    DeploymentTaskSpec,
    EvidenceRef,
    PlanRecord,
    RingProgress,
    StepName,
    StepState,
    TaskPhase,
)
from controller.api.meta import ConditionStatus
from controller.api.policy import Policy
from controller.orchestration import risk as riskmodel
from controller.orchestration.attempts import run_actor_step
from controller.orchestration.declaring import declared_risk
from controller.orchestration.evidence import plan_digest
from controller.orchestration.facts import Facts, TaskView
from controller.orchestration.ownership import owned_spec
from controller.orchestration.rollout import cancel, cancellable, rollback, rollout, withdraw
from controller.orchestration.steps import GENERATE_EVIDENCE_ACTOR, EvidenceReport
from controller.orchestration.transitions import TERMINAL, ChangeRequestWrite, Transitions

UNATTRIBUTED = "system:unattributed"


def next_step(task: TaskView, facts: Facts) -> Transitions:
    """Decide the next step of `task` (see the module docstring); never performs I/O."""
    t = Transitions(task.status, facts.now, task.correlation_id, task.generation)
    if _restartable(task):
        t.set(phase=None, steps=[], plan=None, risk=None, rings=[], finished_at=None, validated_generation=None)
    if t.status.phase in TERMINAL:
        t.idle = True
        return t
    if t.status.started_at is None:
        t.set(started_at=facts.now, correlation_id=task.correlation_id)
    stale = t.status.plan is None or t.status.plan.generation != task.generation
    if stale and not _validate(t, task, facts):
        return t
    _plan_lock(t, task)
    plan = t.status.plan
    assert plan is not None
    if t.status.phase is TaskPhase.ROLLING_BACK and plan.action is Action.DEPLOY:
        rollback(t, task, facts)  # the fast path: no cancel, no evidence or approval check in its way
        return t
    if task.spec.cancel and cancellable(t):
        cancel(t)
        return t
    if not _evidence(t, task, facts):
        return t
    _approval(t, task)
    if plan.action is Action.ROLLBACK:
        withdraw(t, task, facts)
    else:
        rollout(t, task, facts)
    return t


def _restartable(task: TaskView) -> bool:
    """A task rejected by ValidateIntent is judged again when its spec changes."""
    status = task.status
    return (
        status.phase is TaskPhase.FAILED
        and status.plan is None
        and status.validated_generation is not None
        and status.validated_generation != task.generation
    )


def identity(spec: DeploymentTaskSpec) -> tuple[str, str, str | None, Action, str]:
    return (spec.app, spec.version, spec.artifact, spec.action, spec.plane.value)


def plan_identity(plan: PlanRecord) -> tuple[str, str, str | None, Action, str]:
    return (plan.app, plan.version, plan.artifact, plan.action, plan.plane.value)


def effective_spec(task: TaskView) -> DeploymentTaskSpec:
    """The spec with the plan's identity once a ring was deployed (app, version, artifact, action, plane)."""
    plan = task.status.plan
    if plan is None or not task.deploy_started():
        return task.spec
    return task.spec.model_copy(
        update={
            "app": plan.app,
            "version": plan.version,
            "artifact": plan.artifact,
            "action": plan.action,
            "plane": plan.plane,
        }
    )


def _problems(task: TaskView, facts: Facts) -> list[tuple[str, str]]:
    spec, v = task.spec, facts.validation
    assert v is not None
    where = f"rings 0-{spec.max_ring}"
    problems = []
    if v.conflict and not task.deploy_started():
        problems.append(
            (
                "ActiveChangeExists",
                f"spec.app: DeploymentTask {v.conflict} is already changing {spec.app} in {where}; "
                "only one change per app and ring may be active",
            )
        )
    if spec.action is Action.DEPLOY and sum(v.targets) == 0:
        problems.append(
            (
                "UnknownApp",
                f"spec.app: no {spec.plane.value} targets of app {spec.app!r} in {where} "
                "(Deployments labelled app.kubernetes.io/name in namespaces labelled ringpilot.dev/ring)",
            )
        )
    if spec.action is Action.ROLLBACK and not v.rollback_targets:
        problems.append(
            (
                "NoRollbackTarget",
                f"spec.version: no recorded deploy of {spec.app} {spec.version} to roll back in {where}",
            )
        )
    declared = declared_risk(spec, task.annotations, facts.policy).inputs
    problems.extend(riskmodel.problems(spec.version, spec.artifact, facts.policy))
    problems.extend(loosening(spec, facts.policy))
    if riskmodel.publish_blocked(declared):
        problems.append(
            (
                "PublishBlocked",
                "spec.risk.sbomVulnerability: Critical findings without compensating controls block "
                "publishing (risk model v1.0)",
            )
        )
    return problems


def loosening(spec: DeploymentTaskSpec, policy: Policy) -> list[tuple[str, str]]:
    """Gate overrides below the policy's ring gate: an override may only tighten (docs/domain.md §2)."""
    found = []
    for i, gate in enumerate(spec.gates):
        ring = policy.ring(gate.ring)
        if gate.success_threshold is not None and gate.success_threshold < ring.success_threshold:
            found.append(
                (
                    "GateLoosened",
                    f"spec.gates[{i}].successThreshold: {gate.success_threshold} is below the policy's "
                    f"{ring.success_threshold} for ring {gate.ring}; an override may only tighten a gate",
                )
            )
        if gate.soak_seconds is not None and gate.soak_seconds < ring.min_soak_seconds:
            found.append(
                (
                    "GateLoosened",
                    f"spec.gates[{i}].soakSeconds: {gate.soak_seconds} is below the policy's "
                    f"{ring.min_soak_seconds} for ring {gate.ring}; an override may only tighten a gate",
                )
            )
    return found


def _validate(t: Transitions, task: TaskView, facts: Facts) -> bool:
    """ValidateIntent: reject with a condition naming the problem, or record the plan and the risk."""
    if facts.validation is None:
        t.wake_in(1.0)
        return False
    step = t.step(StepName.VALIDATE_INTENT)
    step = t.put_step(step.model_copy(update={"attempts": step.attempts + 1, "started_at": step.started_at or t.now}))
    t.set(validated_generation=task.generation)
    problems = _problems(task, facts) if not task.deploy_started() else []
    if problems:
        message = "; ".join(p[1] for p in problems)
        reason = problems[0][0]
        t.close_step(step, StepState.FAILED, message)
        t.condition("InvalidSpec", True, reason, message)
        t.phase(TaskPhase.FAILED, reason, message)
        return False
    declared = declared_risk(effective_spec(task), task.annotations, facts.policy)
    spec = effective_spec(task).model_copy(update={"risk": declared.inputs})
    assessment = riskmodel.assess(spec.risk, spec.max_ring, spec.app, facts.policy, spec.artifact)
    targets = tuple(facts.validation.targets[: spec.max_ring + 1])
    plan = PlanRecord(
        digest=plan_digest(spec, assessment, facts.policy, declared.declared_by),
        generation=task.generation,
        app=spec.app,
        version=spec.version,
        artifact=spec.artifact,
        action=spec.action,
        plane=spec.plane,
        max_ring=spec.max_ring,
        targets=list(targets),
        submitter=spec.requested_by or UNATTRIBUTED,
        validated_at=t.now,
    )
    old = t.status.plan
    rings = [p for p in t.status.rings if p.ring <= spec.max_ring or p.deployed_at is not None]
    known = {p.ring for p in rings}
    rings += [RingProgress(ring=r, targets=targets[r]) for r in range(spec.max_ring + 1) if r not in known]
    t.set(plan=plan, risk=assessment, rings=sorted(rings, key=lambda p: p.ring))
    message = (
        f"Validated {spec.app} {spec.version}: {sum(targets)} targets in rings 0-{spec.max_ring}; "
        f"risk {assessment.score} ({assessment.label}, model {assessment.model_version})"
    )
    t.close_step(step, StepState.SUCCEEDED, message)
    t.note("IntentValidated", message, digest=plan.digest, risk=assessment.score)
    if old is not None and old.digest != plan.digest:
        _replan(t, old.digest, plan.digest)
    return True


def _replan(t: Transitions, old: str, new: str) -> None:
    """A new plan: new evidence, and approvals given for the old plan no longer count."""
    t.note(
        "PlanChanged",
        f"The plan changed ({old[:12]} -> {new[:12]}): the evidence pack is regenerated and CAB "
        "approvals of the old plan are void",
        old=old,
        new=new,
    )
    for name in (StepName.GENERATE_EVIDENCE, StepName.SUBMIT_CHANGE_REQUEST, StepName.AWAIT_APPROVAL):
        step = t.step(name)
        t.put_step(step.model_copy(update={"state": StepState.PENDING, "key": None, "next_attempt_at": None}))
    t.set(evidence=None, approval=None)


def _plan_lock(t: Transitions, task: TaskView) -> None:
    plan = t.status.plan
    if plan is None or not task.deploy_started() or identity(task.spec) == plan_identity(plan):
        return
    message = (
        f"The spec asks for {task.spec.app} {task.spec.version} but ring 0 already runs this task's "
        f"{plan.app} {plan.version}; only spec.cancel is honoured now - create a new DeploymentTask"
    )
    if not any(c.type == "PlanLocked" and c.status.value == "True" for c in task.status.conditions):
        t.note("PlanLocked", message)
    t.condition("PlanLocked", True, "IdentityChangedAfterDeploy", message)


def _verified(t: Transitions, ref: EvidenceRef, facts: Facts) -> bool:
    """The stored pack's check, when this decision was taken with it read (docs/domain.md §5)."""
    if not facts.evidence_checked:
        return True  # not read for this decision: nothing it does needs the pack (no deploy, no success)
    if facts.evidence_problem:
        message = f"Evidence pack {ref.id}: {facts.evidence_problem}"
        t.condition("EvidenceVerified", False, "EvidenceTampered", message)
        t.phase(TaskPhase.FAILED, "EvidenceTampered", message)
        return False
    t.condition("EvidenceVerified", True, "HashVerified", f"Evidence pack {ref.id} matches sha256 {ref.sha256[:16]}")
    return True


def _evidence(t: Transitions, task: TaskView, facts: Facts) -> bool:
    """GenerateEvidence: done once per plan. The stored pack is checked when it arrives, before each
    ring's Deploy and before the rollout succeeds (`observing.wants_evidence_check`)."""
    plan = t.status.plan
    assert plan is not None
    if t.status.evidence is not None:
        return _verified(t, t.status.evidence, facts)
    t.phase(TaskPhase.VALIDATING, "GeneratingEvidence", "Building the evidence pack")
    t.set(current_step=StepName.GENERATE_EVIDENCE.value)
    run = run_actor_step(
        t,
        task,
        facts,
        StepName.GENERATE_EVIDENCE,
        None,
        GENERATE_EVIDENCE_ACTOR,
        {
            "plan_digest": plan.digest,
            "app": plan.app,
            "version": plan.version,
            "artifact": plan.artifact,
            "plane": plan.plane.value,
        },
        EvidenceReport,
        tag=plan.digest[:12],
    )
    if run.state == "failed":
        t.phase(TaskPhase.FAILED, "StepFailed", run.message)
        return False
    if run.state == "waiting" or run.report is None:
        return False
    ref = EvidenceRef(id=run.report.id, sha256=run.report.sha256)
    t.set(evidence=ref)
    t.note(
        "EvidenceRecorded",
        f"Evidence pack {ref.id} recorded (sha256 {ref.sha256})",
        id=ref.id,
        sha256=ref.sha256,
    )
    return _verified(t, ref, facts)


def _approval(t: Transitions, task: TaskView) -> None:
    """SubmitChangeRequest, or the auto-approval with the rule that allowed it (once per plan)."""
    plan, assessment = t.status.plan, t.status.risk
    assert plan is not None
    assert assessment is not None
    if t.status.approval is not None:
        return
    policy_rule = f"risk {assessment.score} with model {assessment.model_version}"
    if plan.action is Action.ROLLBACK or assessment.cab_from_ring is None:
        if plan.action is Action.ROLLBACK:
            rule = "A rollback is a fast path and needs no CAB approval"
        else:
            rule = (
                f"Auto-approved: {policy_rule} ({assessment.label}); no ring in 0-{plan.max_ring} "
                "needs CAB under the policy's cabRequiredAboveRisk"
                + ("" if not assessment.privileged else " (privileged tooling)")
            )
        t.set(approval=ApprovalRecord(mode="Auto", rule=rule, phase="Approved"))
        for step_name in (StepName.SUBMIT_CHANGE_REQUEST, StepName.AWAIT_APPROVAL):
            t.close_step(t.step(step_name), StepState.SKIPPED, rule)
        t.note("AutoApproved", rule, rule=rule)
        t.condition("Approved", True, "AutoApproved", rule)
        return
    deadline = t.now + timedelta(seconds=task.spec.approval.max_wait_seconds)
    name = t.status.change_request or f"{task.name}-cab"[:253]
    quorum = assessment.required_approvals or 1
    rule = (
        f"CAB approval needed from ring {assessment.cab_from_ring}: {policy_rule} ({assessment.label}); "
        f"quorum {quorum} ({assessment.blast_radius_class}); review deadline {deadline.isoformat()}"
    )
    t.set(
        change_request=name,
        approval=ApprovalRecord(mode="ChangeRequest", rule=rule, phase="Pending", review_deadline=deadline),
    )
    spec = owned_spec(task.name, t.status)
    assert spec is not None
    t.change_request = ChangeRequestWrite(name, task.namespace, spec, task.correlation_id)
    t.close_step(t.step(StepName.SUBMIT_CHANGE_REQUEST), StepState.SUCCEEDED, f"Submitted ChangeRequest {name}")
    t.note("ChangeRequestSubmitted", f"Submitted ChangeRequest {name}: {rule}", change_request=name)
    t.condition("Approved", ConditionStatus.UNKNOWN, "Submitted", rule)
