"""The controller's dramatiq actors: the only module of `controller` with @dramatiq.actor.

Imported by `ringpilot worker` after `controller.messaging.broker.build_broker` has set the broker.
Actors receive ids, never objects, and claim their idempotency key in PostgreSQL before
any effect, because a message may be delivered twice.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq

from controller.messaging.broker import STEPS_QUEUE
from controller.orchestration.runtime import run_step
from controller.remediation.acting import act_in_worker

logger = logging.getLogger(__name__)


# ---- remediation (controller/remediation/acting.py) -----------------------------------------------


@dramatiq.actor(actor_name="remediation_act", queue_name=STEPS_QUEUE)
def remediation_act(namespace: str, name: str, uid: str, attempt: int, assignment: str, correlation_id: str) -> None:
    """Perform one attempt of a Remediation through its execution plane (claimed by attempt, so once)."""
    act_in_worker(namespace, name, uid, attempt, assignment, correlation_id)


# ---- orchestration (controller/orchestration/execution.py) ----------------------------------------
# Each claims its key in step_claims, so a redelivered message does nothing; the outcome is read back
# by the DeploymentTask reconcile. Retries of a failed step are attempts with new keys, not redeliveries.


@dramatiq.actor(actor_name="orchestration_generate_evidence", queue_name=STEPS_QUEUE, max_retries=3)
def orchestration_generate_evidence(**kwargs: Any) -> None:
    """Build, hash and store the evidence pack of a DeploymentTask's plan."""
    run_step("generate_evidence", kwargs)


@dramatiq.actor(actor_name="orchestration_deploy_ring", queue_name=STEPS_QUEUE, max_retries=3)
def orchestration_deploy_ring(**kwargs: Any) -> None:
    """Deploy a DeploymentTask's version to one ring and write its Assignments."""
    run_step("deploy_ring", kwargs)


@dramatiq.actor(actor_name="orchestration_poll_ring", queue_name=STEPS_QUEUE, max_retries=3)
def orchestration_poll_ring(**kwargs: Any) -> None:
    """Poll the health of one ring for a DeploymentTask's gate."""
    run_step("poll_ring", kwargs)


@dramatiq.actor(actor_name="orchestration_rollback_ring", queue_name=STEPS_QUEUE, max_retries=3)
def orchestration_rollback_ring(**kwargs: Any) -> None:
    """Roll one ring back to the previous recorded version."""
    run_step("rollback_ring", kwargs)
