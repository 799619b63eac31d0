"""`TaskOrchestrator.orchestrate_deployment`: one entry point to start a rollout.

The conversation engine, the gateway and scripts call it; it creates the DeploymentTask
(the controller then drives the chain) and returns a handle to follow it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from controller.api.deploymenttask import (
    FINAL_PHASES,
    DeploymentTask,
    DeploymentTaskSpec,
    DeploymentTaskStatus,
    TaskPhase,
)
from controller.api.labels import CORRELATION_LABEL
from controller.api.meta import ObjectMeta
from controller.kube.client import ApiException, CustomObjects


@dataclass(frozen=True)
class TaskHandle:
    """Follows one DeploymentTask."""

    objects: CustomObjects
    namespace: str
    name: str
    correlation_id: str

    async def task(self) -> DeploymentTask:
        return await self.objects.get(DeploymentTask, self.namespace, self.name)

    async def status(self) -> DeploymentTaskStatus:
        return (await self.task()).status

    async def wait(
        self, phases: frozenset[TaskPhase] = FINAL_PHASES, timeout_seconds: float = 600, poll_seconds: float = 0.5
    ) -> DeploymentTaskStatus:
        """Poll until the task's phase is one of `phases`; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            status = await self.status()
            if status.phase in phases:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"DeploymentTask {self.name} is still {status.phase} after {timeout_seconds}s")
            await asyncio.sleep(poll_seconds)


class TaskOrchestrator:
    """Starts deployment chains by creating DeploymentTasks."""

    def __init__(self, objects: CustomObjects, namespace: str = "default") -> None:
        self.objects = objects
        self.namespace = namespace

    async def orchestrate_deployment(
        self, deployment_intent_id: str, correlation_id: str, spec: DeploymentTaskSpec
    ) -> TaskHandle:
        """Create DeploymentTask `deployment_intent_id` carrying `correlation_id`; return its handle.

        Idempotent: when the task already exists with the same correlation ID, its handle is returned.
        """
        spec = spec.model_copy(update={"correlation_id": correlation_id})
        task = DeploymentTask(
            metadata=ObjectMeta(
                name=deployment_intent_id, namespace=self.namespace, labels={CORRELATION_LABEL: correlation_id}
            ),
            spec=spec,
            status=DeploymentTaskStatus(),
        )
        try:
            await self.objects.create(task, self.namespace)
        except ApiException as error:
            if error.status != 409:
                raise
            existing = await self.objects.get(DeploymentTask, self.namespace, deployment_intent_id)
            if existing.correlation_id != correlation_id:
                raise
        return TaskHandle(self.objects, self.namespace, deployment_intent_id, correlation_id)
