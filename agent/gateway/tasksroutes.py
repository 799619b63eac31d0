"""`GET /api/v1/tasks`: the DeploymentTasks `ringpilot tasks` shows, filtered by namespace, app and phase.

Read with the caller's Kubernetes client (their own token in kubernetes mode), so RBAC decides what
they see; the listing itself is `tasklisting.list_tasks`. Any role that may read may call it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from agent.gateway.consoleviews import TaskList
from agent.gateway.dependencies import CallerDep, GatewayDep, kube_refusal
from agent.gateway.errors import GatewayError
from agent.gateway.tasklisting import list_tasks
from controller.api.deploymenttask import TaskPhase
from controller.api.meta import DnsLabel
from controller.api.policy import Permission
from controller.kube.client import KubeError

router = APIRouter(prefix="/api/v1", tags=["tasks"])


@router.get("/tasks")
async def tasks(
    gateway: GatewayDep,
    principal: CallerDep,
    namespace: Annotated[DnsLabel | None, Query(description="Only this namespace (default: all)")] = None,
    app: Annotated[DnsLabel | None, Query(description="Only this app")] = None,
    phase: Annotated[TaskPhase | None, Query(description="Only tasks in this phase")] = None,
) -> TaskList:
    """DeploymentTasks, newest first, each with its rings' progress."""
    if not gateway.may(principal, Permission.READ):
        raise GatewayError(403, f"{principal.user} may not read DeploymentTasks")
    try:
        return await list_tasks(
            gateway.objects_for(principal), namespace=namespace, app=app, phase=phase.value if phase else None
        )
    except KubeError as error:
        raise kube_refusal(error, "list DeploymentTasks") from error
