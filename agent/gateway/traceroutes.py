"""`GET /api/v1/traces/{correlationId}`: everything one correlation ID touched, for `ringpilot trace`.

The query is `tracefinding.find_trace`: audit rows (with their trace ids), chat turns, messages and
tool calls, step claims, rollout history, the labelled custom resources, their steps and Events.
Objects and Events are read with the caller's own Kubernetes client; chat text only of the caller's
own conversations (an admin's: everyone's).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from agent.gateway.consoleviews import Trace
from agent.gateway.dependencies import CallerDep, GatewayDep, kube_refusal
from agent.gateway.errors import GatewayError
from agent.gateway.tracefinding import find_trace
from agent.gateway.tracerows import Viewer
from controller.api.meta import CorrelationId
from controller.api.policy import Permission
from controller.kube.client import CustomObjects, KubeError
from controller.kube.coreapps import CoreApps

router = APIRouter(prefix="/api/v1", tags=["traces"])


@router.get("/traces/{correlationId}")
async def trace(
    correlation_id: Annotated[CorrelationId, Path(alias="correlationId")],
    gateway: GatewayDep,
    principal: CallerDep,
) -> Trace:
    """The correlation ID's entries in time order, and the trace ids recorded with its audit rows."""
    if not gateway.may(principal, Permission.READ):
        raise GatewayError(403, f"{principal.user} may not read traces")
    viewer = Viewer(principal.user, admin=gateway.is_admin(principal))
    api_client = gateway.client_for(principal)
    try:
        return await find_trace(gateway.pool, CustomObjects(api_client), CoreApps(api_client), correlation_id, viewer)
    except KubeError as error:
        raise kube_refusal(error, f"read what correlation ID {correlation_id} touched") from error
