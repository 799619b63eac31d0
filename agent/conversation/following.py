"""Following what a conversation created: the next reply tells the user when one of its tasks failed.

A DeploymentTask the chat created (the turn log's `chat_resources`) that ended Failed, RolledBack,
Rejected or Expired after the conversation's last answer is named, with its reason, at the top of
the next reply. The window is the time of the previous turn's final answer, so a retried turn says
the same and a failure is told once, with nothing more to store.
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


async def failure_notices(turnlog: TurnLog, ctx: ToolContext, conversation_id: str, turn_id: str) -> list[str]:
    """Notices of the conversation's tasks that ended badly since its previous answer (best effort)."""
    since = await turnlog.last_answer_at(conversation_id, turn_id)
    notes = []
    for ref in await turnlog.created(conversation_id, "DeploymentTask"):
        try:
            task = await ctx.objects.find(DeploymentTask, ref.namespace or ctx.namespace, ref.name)
        except KubeError as error:  # a notice is a courtesy; the turn goes on without it
            logger.warning("Could not read DeploymentTask %s (correlation %s): %s", ref.name, ctx.correlation_id, error)
            continue
        if task is None or task.status.phase not in FAILED_PHASES:
            continue
        ended = task.status.finished_at
        if since is None or ended is None or ended >= since.replace(microsecond=0):  # the API keeps seconds
            notes.append(notice(task))
    return notes
