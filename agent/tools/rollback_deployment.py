"""Tool `rollback_deployment`: roll an app back to its previous recorded version.

Creates a DeploymentTask with `action: Rollback` for the app's latest rollout (its version is the
one being undone; the execution plane restores what it recorded before that rollout), up to the
ring the rollout reached. Mutating: proposes first, acts on "yes". Another live task of the app is
named with the offer to cancel it or wait; the rollout being undone is pre-empted instead (the
domain's fast path): on "yes" it is cancelled and the rollback starts.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field

from agent.errors import ToolError
from agent.router.entities import ring_label
from agent.tools.base import Plan, Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.creating import create_task
from agent.tools.lookups import objects_of, workloads
from agent.tools.startable import blocking_task, busy, undone_rollout
from controller.api.deploymenttask import Action, DeploymentTask, DeploymentTaskSpec, ImageTag
from controller.api.kinds import DEPLOYMENT_TASK
from controller.api.meta import DnsLabel, Message
from controller.api.policy import Permission
from controller.kube.client import ApiException

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RollbackInput(ToolInput):
    app: DnsLabel = Field(description="The app to roll back, e.g. web")
    max_ring: int | None = Field(
        None, ge=0, le=4, description="Highest ring to roll back; where the rollout got to if unset"
    )
    to_version: ImageTag | None = Field(
        None, description="The version expected after the rollback, if the user named one"
    )
    reason: Message | None = Field(None, description="Why")


async def current_rollout(ctx: ToolContext, app: str) -> tuple[str, int]:
    """The version to undo and the highest ring it reached: from the latest deploy task, else the workloads."""
    tasks = [t for t in await objects_of(ctx, DeploymentTask, app) if t.spec.action is Action.DEPLOY]
    tasks.sort(key=lambda t: t.status.started_at or _EPOCH)
    if tasks:
        last = tasks[-1]
        reached = last.status.current_ring if last.status.current_ring is not None else last.spec.max_ring
        return last.spec.version, reached
    running = await workloads(ctx, app=app)
    if not running:
        raise ToolError(f"No workload of an app named {app} runs in any ring, so there is nothing to roll back.")
    newest = running[0].version  # ring 0 gets every new version first
    return newest, max(w.ring for w in running if w.version == newest)


class RollbackDeployment(Tool[RollbackInput]):
    name = "rollback_deployment"
    description = (
        "Propose rolling an app back to its previous recorded version (fast path, no CAB), in every ring its latest "
        "rollout reached or up to max_ring. Nothing happens until the user confirms with yes."
    )
    input_model = RollbackInput
    permission = Permission.ROLLBACK
    mutating = True

    async def plan(self, args: RollbackInput, ctx: ToolContext) -> Plan:
        version, reached = await current_rollout(ctx, args.app)
        if args.to_version is not None and args.to_version == version:
            raise ToolError(f"{args.app} {version} is the version being rolled back, not the one it returns to.")
        ring = args.max_ring if args.max_ring is not None else reached
        blocker = await blocking_task(ctx, args.app, undoing=version)
        if blocker is not None:
            raise ToolError(busy(blocker))
        rollout = await undone_rollout(ctx, args.app, version)
        stops = f", stopping the rollout {rollout.metadata.name} first" if rollout is not None else ""
        target = f" to {args.to_version}" if args.to_version else " to its previous recorded version"
        return Plan(
            f"roll {args.app} back from {version}{target} in rings 0-{ring} (up to {ring_label(ring)}){stops}, "
            f"requested by {ctx.user}",
            arguments={**args.model_dump(exclude_none=True), "max_ring": ring},
        )

    async def execute(self, args: RollbackInput, ctx: ToolContext, action_id: str) -> ToolOutput:
        version, reached = await current_rollout(ctx, args.app)
        ring = args.max_ring if args.max_ring is not None else reached
        rollout = await undone_rollout(ctx, args.app, version)
        if rollout is not None and not rollout.spec.cancel:
            await self._preempt(ctx, rollout)
        spec = DeploymentTaskSpec(
            app=args.app,
            version=version,
            action=Action.ROLLBACK,
            max_ring=ring,
            reason=args.reason
            or f"Rollback requested in chat (Conversation {ctx.conversation})"
            + (f"; expected version {args.to_version}" if args.to_version else ""),
        )
        ref = await create_task(ctx, action_id, spec)
        stopped = f" The rollout {rollout.metadata.name} is cancelled." if rollout is not None else ""
        return ToolOutput(
            text=f"Created rollback task {ref.name}: {args.app} rolls back from {version} in rings 0-{ring}.{stopped}",
            data={"task": ref.name, "namespace": ref.namespace},
            resources=(ref,),
        )

    async def _preempt(self, ctx: ToolContext, rollout: DeploymentTask) -> None:
        """Cancel the rollout being undone (idempotent), so the rollback is the app's one active change."""
        namespace = rollout.metadata.namespace or ctx.namespace
        try:
            await ctx.objects.patch(DEPLOYMENT_TASK, namespace, rollout.metadata.name, {"spec": {"cancel": True}})
        except ApiException as error:
            raise ToolError(
                f"I could not stop the rollout {rollout.metadata.name} (HTTP {error.status}: {error.reason}), "
                "so I did not start the rollback."
            ) from error
