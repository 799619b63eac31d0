"""CAB approvals inside the rollout: absorbing a decision, AwaitApproval, expiry, and the approved maxRing.

Pure over `Transitions`, called by controller/orchestration/rollout.py for each ring. A decision binds
the rollout as soon as it is seen; a ring that needs CAB waits (persisted, requeued, never sleeping)
until the ChangeRequest is approved for the current plan, rejected, or past its review deadline. The
decisions are counted against the task's own plan, submitter and quorum (ownership.verdict_for).
"""

from __future__ import annotations

from enum import Enum

from controller.api.changerequest import ChangePhase
from controller.api.deploymenttask import ApprovalConditions, StepName, StepState, TaskPhase
from controller.api.meta import ConditionStatus
from controller.orchestration.facts import Facts, TaskView
from controller.orchestration.ownership import CabCount
from controller.orchestration.transitions import Transitions

#: How often a task waiting for CAB approval looks at its ChangeRequest again.
APPROVAL_POLL_SECONDS = 2.0


class Progress(Enum):
    """What a step of the ring loop tells it: go on, wait to be woken, or stop (the phase says why)."""

    NEXT = "next"
    WAIT = "wait"
    END = "end"


def approved_conditions(t: Transitions) -> ApprovalConditions | None:
    approval = t.status.approval
    return approval.conditions if approval is not None and approval.phase == "Approved" else None


def stop(t: Transitions, max_ring: int) -> None:
    plan = t.status.plan
    assert plan is not None
    deployed = [str(r.ring) for r in t.status.rings if r.deployed_at is not None]
    rest = [str(r) for r in range(plan.max_ring + 1) if str(r) not in deployed]
    message = (
        f"Stopped: the CAB approval limits this change to maxRing {max_ring}; "
        f"rings {', '.join(deployed) or 'none'} run {plan.version}, rings {', '.join(rest)} were not deployed"
    )
    t.condition("Stopped", True, "ApprovalMaxRing", message)
    t.phase(TaskPhase.STOPPED, "StoppedByApproval", message)


def counted(t: Transitions, facts: Facts) -> CabCount | None:
    """The CAB's decision on this task's plan, counted against the task's own submitter and quorum."""
    plan, risk, cr = t.status.plan, t.status.risk, facts.change_request
    if plan is None or cr is None:
        return None
    quorum = (risk.required_approvals if risk is not None else None) or 1
    return cr.count(plan.digest, plan.submitter, quorum)


def absorb_decision(t: Transitions, facts: Facts) -> Progress:
    """A CAB decision binds the rollout from the moment it is seen, even before the gated ring."""
    plan, approval, cr = t.status.plan, t.status.approval, facts.change_request
    if plan is None or approval is None or approval.phase != "Pending" or cr is None:
        return Progress.NEXT
    count = counted(t, facts)
    if count is not None and count.phase in (ChangePhase.APPROVED, ChangePhase.REJECTED):
        return _decision(t, facts)
    return Progress.NEXT


def await_approval(t: Transitions, task: TaskView, facts: Facts, ring: int) -> Progress:
    plan, approval = t.status.plan, t.status.approval
    assert plan is not None
    assert approval is not None
    if approval.phase == "Approved":
        return Progress.NEXT
    decided = _decision(t, facts)
    if decided is not Progress.WAIT:
        return decided
    step = t.step(StepName.AWAIT_APPROVAL)
    name = t.status.change_request or "?"
    deadline = approval.review_deadline
    count = counted(t, facts)
    phase = count.phase if count is not None else None
    if phase is ChangePhase.EXPIRED or (deadline is not None and t.now >= deadline):
        message = (
            f"No CAB decision on ChangeRequest {name} within {task.spec.approval.max_wait_seconds}s "
            f"(deadline {deadline.isoformat() if deadline else 'passed'})"
        )
        t.set(approval=approval.model_copy(update={"phase": "Expired"}))
        t.close_step(step, StepState.FAILED, message)
        t.condition("Approved", False, "ApprovalExpired", message)
        t.note("ApprovalEscalated", f"{message}; escalated to the CAB for review", change_request=name)
        t.phase(TaskPhase.EXPIRED, "ApprovalExpired", message)
        return Progress.END
    if step.state is not StepState.RUNNING:
        t.put_step(step.model_copy(update={"state": StepState.RUNNING, "started_at": t.now, "attempts": 1}))
    message = f"Waiting for CAB approval of ChangeRequest {name} before ring {ring}"
    t.set(current_step=StepName.AWAIT_APPROVAL.value)
    t.condition("Approved", ConditionStatus.UNKNOWN, "AwaitingApproval", message)
    t.phase(TaskPhase.AWAITING_APPROVAL, "AwaitingApproval", message)
    t.wake_in(APPROVAL_POLL_SECONDS)
    if deadline is not None:
        t.wake(deadline)
    return Progress.WAIT


def _decision(t: Transitions, facts: Facts) -> Progress:
    """Record an approval (NEXT) or a rejection (END) of the current plan; WAIT while undecided."""
    plan, approval = t.status.plan, t.status.approval
    assert plan is not None
    assert approval is not None
    step = t.step(StepName.AWAIT_APPROVAL)
    cr = facts.change_request
    count = counted(t, facts)
    phase = count.phase if count is not None else None
    if phase is ChangePhase.APPROVED and cr is not None and count is not None:
        message = f"ChangeRequest {cr.name} approved ({count.approvals}/{count.required})"
        if count.conditions is not None:
            message += f" with conditions {count.conditions.to_wire()}"
        t.set(approval=approval.model_copy(update={"phase": "Approved", "conditions": count.conditions}))
        t.close_step(step, StepState.SUCCEEDED, message)
        t.note("ChangeApproved", message, change_request=cr.name)
        t.condition("Approved", True, "CabApproved", message)
        return Progress.NEXT
    if phase is ChangePhase.REJECTED:
        message = f"ChangeRequest {t.status.change_request} was rejected by the CAB"
        t.set(approval=approval.model_copy(update={"phase": "Rejected"}))
        t.close_step(step, StepState.FAILED, message)
        t.condition("Approved", False, "CabRejected", message)
        t.phase(TaskPhase.REJECTED, "ChangeRejected", message)
        return Progress.END
    return Progress.WAIT
