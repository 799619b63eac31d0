"""Following what a conversation created: the next reply tells the user when one of its tasks failed.

A DeploymentTask the chat created (the turn log's `chat_resources`) that ended Failed, RolledBack,
Rejected or Expired is named, with its reason, at the top of the next reply. The tasks told are kept
in that reply's final message (`meta.told`), so a failure is told once, and a retried turn (which
looks only at the other turns' answers) says the same.
"""

from __future__ import annotations

import logging

from agent.chat.turnlog import TurnLog
from agent.tools.base import ToolContext
from controller.api.deploymenttask import DeploymentTask, StepState, TaskPhase
from controller.kube.client import KubeError

logger = logging.getLogger(__name__)

#: End states the user must hear about.
FAILED_PHASES = frozenset({TaskPhase.FAILED, TaskPhase.ROLLED_BACK, TaskPhase.REJECTED, TaskPhase.EXPIRED})


def reason_of(task: DeploymentTask) -> str:
    """Why the task ended: its Ready condition's message, else its last failed step's."""
    ready = next((c for c in task.status.conditions if c.type == "Ready" and c.message), None)
    if ready is not None:
        return f"{ready.reason}: {ready.message}"
    failed = [s for s in task.status.steps if s.state is StepState.FAILED and s.message]
    return failed[-1].message or "" if failed else "no reason recorded"


def notice(task: DeploymentTask) -> str:
    phase = task.status.phase.value if task.status.phase else "Failed"
    spec = task.spec
    return (
        f"Heads-up: DeploymentTask {task.metadata.name} that you created here ({spec.action.value.lower()} "
        f"{spec.app} {spec.version} up to ring {spec.max_ring}) ended {phase}: {reason_of(task)}"
    )


async def failure_notices(
    turnlog: TurnLog, ctx: ToolContext, conversation_id: str, turn_id: str
) -> list[tuple[str, str]]:
    """(task name, notice) of the conversation's tasks that ended badly and were not told yet (best effort)."""
    told = await turnlog.told(conversation_id, turn_id)
    notes = []
    for ref in await turnlog.created(conversation_id, "DeploymentTask"):
        if ref.name in told:
            continue
        try:
            task = await ctx.objects.find(DeploymentTask, ref.namespace or ctx.namespace, ref.name)
        except KubeError as error:  # a notice is a courtesy; the turn goes on without it
            logger.warning("Could not read DeploymentTask %s (correlation %s): %s", ref.name, ctx.correlation_id, error)
            continue
        if task is not None and task.status.phase in FAILED_PHASES:
            notes.append((ref.name, notice(task)))
    return notes
