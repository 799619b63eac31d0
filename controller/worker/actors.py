"""Every dramatiq actor of Ringpilot: the only module with @dramatiq.actor.

Imported by `ringpilot worker` after `controller.worker.boot.setup` has set the broker. Actors are
`async def` and run on the process's one event loop (dramatiq's `AsyncIO` middleware) with the
resources opened once per process (controller/worker/resources.py). They receive ids, never objects,
and claim their idempotency key in PostgreSQL before any effect, because a message may be delivered twice.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq

from controller.api.conversation import TURN_ACTOR, TURN_QUEUE
from controller.messaging.broker import STEPS_QUEUE
from controller.orchestration.execution import BODIES, StepContext, StepRequest, execute
from controller.remediation.acting import Worker, perform
from controller.remediation.cluster import KubeCluster
from controller.remediation.ledger import PgLedger
from controller.remediation.ports import ACT_ACTOR, ActRequest
from controller.storage import claims
from controller.worker.resources import current

logger = logging.getLogger(__name__)


# ---- remediation (controller/remediation/acting.py) -----------------------------------------------


@dramatiq.actor(actor_name=ACT_ACTOR, queue_name=STEPS_QUEUE)
async def remediation_act(
    namespace: str, name: str, uid: str, attempt: int, assignment: str, correlation_id: str
) -> None:
    """Perform one attempt of a Remediation through its execution plane (claimed by attempt, so once)."""
    resources = current()
    pool = resources.require_pool("remediate")
    worker = Worker(
        KubeCluster(resources.api_client),
        resources.plane_set("remediate"),
        PgLedger(pool),
        pool,
        resources.owner,
        owner_gone=claims.owner_gone,
    )
    await perform(worker, ActRequest(namespace, name, uid, attempt, correlation_id, assignment))


# ---- orchestration (controller/orchestration/execution.py) ----------------------------------------
# Each claims its key in step_claims, so a redelivered message does nothing; the outcome is read back
# by the DeploymentTask reconcile. Retries of a failed step are attempts with new keys, not redeliveries.


async def run_step(body_name: str, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Run step `body_name` for the message's kwargs; the report, or None if another delivery holds it."""
    step, body = BODIES[body_name]
    resources = current()
    what = "run deployment steps"
    ctx = StepContext(
        resources.require_pool(what), resources.api_client, resources.plane_set(what), resources.policy, resources.owner
    )
    return await execute(ctx, StepRequest(**kwargs), body, step)


@dramatiq.actor(actor_name="orchestration_generate_evidence", queue_name=STEPS_QUEUE, max_retries=3)
async def orchestration_generate_evidence(**kwargs: Any) -> None:
    """Build, hash and store the evidence pack of a DeploymentTask's plan."""
    await run_step("generate_evidence", kwargs)


@dramatiq.actor(actor_name="orchestration_deploy_ring", queue_name=STEPS_QUEUE, max_retries=3)
async def orchestration_deploy_ring(**kwargs: Any) -> None:
    """Deploy a DeploymentTask's version to one ring and write its Assignments."""
    await run_step("deploy_ring", kwargs)


@dramatiq.actor(actor_name="orchestration_poll_ring", queue_name=STEPS_QUEUE, max_retries=3)
async def orchestration_poll_ring(**kwargs: Any) -> None:
    """Poll the health of one ring for a DeploymentTask's gate."""
    await run_step("poll_ring", kwargs)


@dramatiq.actor(actor_name="orchestration_rollback_ring", queue_name=STEPS_QUEUE, max_retries=3)
async def orchestration_rollback_ring(**kwargs: Any) -> None:
    """Roll one ring back to the previous recorded version."""
    await run_step("rollback_ring", kwargs)


# ---- conversations (agent/conversation/worker.py, through the `ringpilot.resources` entry point) ----


@dramatiq.actor(actor_name=TURN_ACTOR, queue_name=TURN_QUEUE, max_retries=5, min_backoff=200, max_backoff=5000)
async def answer_turn(namespace: str, name: str, uid: str, message_id: str, correlation_id: str) -> None:
    """Answer Conversation `namespace/name` up to and including `message_id`, in order, exactly once."""
    logger.debug("Turn %r of Conversation %s/%s received (correlation %s)", message_id, namespace, name, correlation_id)
    await current().handler(TURN_ACTOR)(namespace, name, uid, message_id, correlation_id)
