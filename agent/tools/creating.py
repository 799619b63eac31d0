"""Creating the custom resources a confirmed action asks for, as the asking user, exactly once.

Names are deterministic (`ToolContext.resource_name` over the conversation and the action id), every
object carries the conversation's correlation ID as label and spec field and `requestedBy` = the
user, and a 409 for an object this conversation already created counts as success, so a retried
turn never creates a duplicate. DeploymentTasks go through `TaskOrchestrator` (controller/api/orchestrator.py).
"""

from __future__ import annotations

from agent.errors import ToolError
from agent.tools.base import ToolContext
from controller.api.conversation import ResourceRef
from controller.api.deploymenttask import DeploymentTaskSpec
from controller.api.labels import CORRELATION_LABEL
from controller.api.meta import ObjectMeta
from controller.api.remediation import Remediation, RemediationSpec, RemediationStatus
from controller.kube.client import ApiException
from controller.kube.orchestrator import TaskOrchestrator


def _api_problem(error: ApiException) -> str:
    return f"the Kubernetes API refused it (HTTP {error.status}: {error.reason})"


async def create_task(ctx: ToolContext, action_id: str, spec: DeploymentTaskSpec) -> ResourceRef:
    """Create (or find, on a retry) the DeploymentTask for `action_id`."""
    name = ctx.resource_name(f"{spec.app}-{spec.version}", action_id)
    spec = spec.model_copy(update={"requested_by": ctx.user, "correlation_id": ctx.correlation_id})
    try:
        await TaskOrchestrator(ctx.objects, ctx.namespace).orchestrate_deployment(name, ctx.correlation_id, spec)
    except ApiException as error:
        raise ToolError(f"I could not create DeploymentTask {name}: {_api_problem(error)}") from error
    return ResourceRef(kind="DeploymentTask", name=name, namespace=ctx.namespace)


async def create_remediation(ctx: ToolContext, action_id: str, namespace: str, spec: RemediationSpec) -> ResourceRef:
    """Create (or find, on a retry) the Remediation for `action_id` next to its assignment."""
    name = ctx.resource_name(f"{spec.assignment}-fix", action_id)
    spec = spec.model_copy(update={"requested_by": ctx.user, "correlation_id": ctx.correlation_id})
    remediation = Remediation(
        metadata=ObjectMeta(name=name, namespace=namespace, labels={CORRELATION_LABEL: ctx.correlation_id}),
        spec=spec,
        status=RemediationStatus(),
    )
    try:
        await ctx.objects.create(remediation, namespace)
    except ApiException as error:
        if error.status != 409:
            raise ToolError(f"I could not create Remediation {name}: {_api_problem(error)}") from error
        existing = await ctx.objects.get(Remediation, namespace, name)
        if existing.correlation_id != ctx.correlation_id:
            raise ToolError(f"Remediation {name} already exists and belongs to another conversation.") from error
    return ResourceRef(kind="Remediation", name=name, namespace=namespace)
