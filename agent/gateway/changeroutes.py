"""CAB over HTTP: the ChangeRequests a caller may decide, and a decision bound to the plan digest.

The gateway checks first what the admission webhook and the controller check again: the caller holds
`approve` (role cab-approver), did not submit the change nor request its task, has not decided it yet,
the change is still pending, and the decision names the plan digest the change carries now (409
otherwise, so nobody approves a plan they were not shown). The decision is appended to
`spec.decisions` under a resourceVersion precondition.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from agent.gateway.authenticating import Principal
from agent.gateway.bodies import ChangeList, ChangeSummary, DecisionRecorded, NewDecision
from agent.gateway.dependencies import CallerDep, GatewayDep, kube_refusal
from agent.gateway.errors import GatewayError, not_found
from agent.gateway.wiring import Gateway
from controller.api.changerequest import ChangePhase, ChangeRequest, DecisionRecord
from controller.api.deploymenttask import DeploymentTask
from controller.api.kinds import CHANGE_REQUEST
from controller.api.meta import DnsLabel
from controller.api.policy import Permission
from controller.kube.client import CustomObjects, KubeError

router = APIRouter(prefix="/api/v1/changerequests", tags=["changerequests"])
ATTEMPTS = 5


def pending(change: ChangeRequest) -> bool:
    return change.status.phase in (None, ChangePhase.PENDING)


def summary_of(change: ChangeRequest) -> ChangeSummary:
    spec = change.spec
    return ChangeSummary(
        name=change.metadata.name,
        namespace=change.metadata.namespace or "default",
        task=spec.task,
        app=spec.app,
        version=spec.version,
        max_ring=spec.max_ring,
        risk_score=spec.risk_score,
        plan_digest=spec.plan_digest,
        submitted_by=spec.submitted_by,
        required_approvals=spec.required_approvals,
        approvals=change.status.approvals,
        phase=(change.status.phase or ChangePhase.PENDING).value,
    )


async def _requester(objects: CustomObjects, change: ChangeRequest) -> str | None:
    task = await objects.find(DeploymentTask, change.metadata.namespace or "default", change.spec.task)
    return task.spec.requested_by if task else None


async def refusal(gateway: Gateway, principal: Principal, change: ChangeRequest) -> GatewayError | None:
    """Why the caller may not decide `change` now, or None."""
    name, user = change.metadata.name, principal.user
    if not gateway.may(principal, Permission.APPROVE):
        role = gateway.role(principal).value
        return GatewayError(403, f"{user} holds role {role}; deciding a change needs cab-approver")
    if change.spec.submitted_by == user:
        return GatewayError(403, f"{user} submitted change request {name} and may not decide it")
    if await _requester(gateway.objects, change) == user:
        return GatewayError(403, f"{user} requested task {change.spec.task} and may not decide its change request")
    if any(d.approver == user for d in change.spec.decisions):
        return GatewayError(409, f"{user} has already decided change request {name}")
    if not pending(change):
        return GatewayError(409, f"Change request {name} is already {change.status.phase}")
    return None


@router.get("")
async def list_changes(
    gateway: GatewayDep,
    principal: CallerDep,
    namespace: Annotated[DnsLabel | None, Query()] = None,
    pending_filter: Annotated[str | None, Query(alias="pending", pattern="^mine$")] = None,
) -> ChangeList:
    """ChangeRequests (all namespaces unless `?namespace=`); `?pending=mine`: the ones the caller may decide."""
    try:
        changes = await gateway.objects_for(principal).list(ChangeRequest, namespace)
    except KubeError as error:
        raise kube_refusal(error, "list ChangeRequests") from error
    if pending_filter == "mine":
        changes = [c for c in changes if await refusal(gateway, principal, c) is None]
    changes.sort(key=lambda c: (c.metadata.namespace or "", c.metadata.name))
    return ChangeList(items=[summary_of(c) for c in changes])


@router.post("/{name}/decisions", status_code=status.HTTP_201_CREATED)
async def decide(
    name: DnsLabel,
    body: NewDecision,
    gateway: GatewayDep,
    principal: CallerDep,
    namespace: Annotated[DnsLabel, Query()] = "default",
) -> DecisionRecorded:
    """Approve (optionally with conditions) or reject a change request as the caller."""
    objects = gateway.objects_for(principal)
    for _ in range(ATTEMPTS):
        try:
            change = await objects.find(ChangeRequest, namespace, name)
        except KubeError as error:
            raise kube_refusal(error, f"read ChangeRequest {namespace}/{name}") from error
        if change is None:
            raise not_found(f"ChangeRequest {namespace}/{name}")
        problem = await refusal(gateway, principal, change)
        if problem is not None:
            raise problem
        if body.plan_digest != change.spec.plan_digest:
            raise GatewayError(
                409, f"The plan of {name} changed; review digest {change.spec.plan_digest}", field="planDigest"
            )
        wanted = body.conditions.max_ring if body.conditions is not None else None
        if wanted is not None and wanted > change.spec.max_ring:
            limit = change.spec.max_ring
            raise GatewayError(422, f"maxRing is beyond the plan's highest ring {limit}", field="conditions.maxRing")
        record = DecisionRecord(
            approver=principal.user,
            decision=body.decision,
            conditions=body.conditions if body.decision == "Approve" else None,
            comment=body.comment or "Decided over the chat gateway",
            decided_at=datetime.now(UTC),
            plan_digest=body.plan_digest,
        )
        decisions = [d.to_wire() for d in change.spec.decisions] + [record.to_wire()]
        patch = {"metadata": {"resourceVersion": change.metadata.resource_version}, "spec": {"decisions": decisions}}
        try:
            raw = await objects.patch(CHANGE_REQUEST, namespace, name, patch)
        except KubeError as error:
            if error.conflict:
                continue
            raise kube_refusal(error, f"decide ChangeRequest {namespace}/{name}") from error
        decided = ChangeRequest.from_body(raw)
        return DecisionRecorded(phase=(decided.status.phase or ChangePhase.PENDING).value, approver=principal.user)
    raise GatewayError(409, f"ChangeRequest {namespace}/{name} kept changing; try again")
