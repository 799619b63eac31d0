"""Wiring drift detection and remediation into the controller and the worker processes.

`start_remediation` (called from controller/operator/startup.py) builds the Kubernetes client, the planes,
the ledger, the Remediation engine and the drift sweep, and starts the sweep's timer task;
`stop_remediation` ends it. `worker_session` gives the `remediation_act` actor its clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from kubernetes.config.config_exception import ConfigException

from controller.api.client import api_client_from_environment
from controller.api.policy import Policy
from controller.messaging.broker import STEPS_QUEUE
from controller.messaging.dispatching import Dispatcher
from controller.planes.base import ExecutionPlane
from controller.planes.catalog import build_plane
from controller.remediation.acting import Worker, worker_owner
from controller.remediation.cluster import KubeCluster
from controller.remediation.ledger import PgLedger
from controller.remediation.ports import ACT_ACTOR, ActRequest, RemediationPorts, act_key
from controller.remediation.sweeping import DriftSweeper
from controller.settings import WorkerSettings, load_settings
from controller.storage import claims
from controller.storage.audit import AuditEvent, AuditRecord, record_audit
from controller.storage.claims import StepClaim
from controller.storage.db import Pool, open_pool

logger = logging.getLogger(__name__)


@dataclass
class PlaneSet:
    """One plane instance per name, built on first use."""

    api_client: Any
    pool: Pool
    planes: dict[str, ExecutionPlane] = field(default_factory=dict)

    def get(self, name: str) -> ExecutionPlane:
        if name not in self.planes:
            self.planes[name] = build_plane(name, api_client=self.api_client, pool=self.pool)
        return self.planes[name]


@dataclass
class RemediationRuntime:
    """What the controller keeps in `deps.remediation`."""

    engine: RemediationPorts
    sweeper: DriftSweeper
    api_client: Any
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


def dispatch_with(dispatcher: Dispatcher) -> Any:
    """An `enqueue` for the engine: one `remediation_act` message per attempt, keyed by the attempt."""

    def enqueue(request: ActRequest) -> None:
        dispatcher.enqueue(
            ACT_ACTOR,
            STEPS_QUEUE,
            key=act_key(request.uid, request.attempt),
            correlation_id=request.correlation_id,
            kwargs=request.kwargs(),
        )

    return enqueue


async def start_remediation(
    policy: Policy,
    pool: Pool | None,
    dispatcher: Dispatcher | None,
    namespaces: list[str] | None = None,
    *,
    sweep: bool = True,
) -> RemediationRuntime | None:
    """Build the runtime and start the drift sweep; None (logged) without PostgreSQL or credentials."""
    if pool is None:
        logger.warning("Drift checks and remediation are off: no PostgreSQL (RINGPILOT_DATABASE_URL)")
        return None
    try:
        api_client = await asyncio.to_thread(api_client_from_environment)
    except (ConfigException, OSError, TypeError) as error:
        logger.warning("Drift checks and remediation are off: no Kubernetes credentials (%s)", error)
        return None
    cluster = KubeCluster(api_client)
    planes = PlaneSet(api_client, pool)
    ledger = PgLedger(pool)

    async def audit(event: AuditEvent) -> AuditRecord:
        return await record_audit(pool, event)

    async def claim(key: str) -> StepClaim | None:
        return await claims.get(pool, key)

    sweeper = DriftSweeper(cluster, planes, ledger, policy, audit=audit, namespaces=namespaces)
    engine = RemediationPorts(
        cluster,
        planes,
        ledger,
        policy,
        claim=claim,
        enqueue=dispatch_with(dispatcher) if dispatcher is not None else None,
        expedite=sweeper.expedite,
    )
    runtime = RemediationRuntime(engine, sweeper, api_client)
    if sweep:
        runtime.task = asyncio.create_task(sweeper.run(runtime.stop), name="drift-sweep")
    return runtime


async def stop_remediation(runtime: RemediationRuntime | None) -> None:
    if runtime is None:
        return
    runtime.stop.set()
    if runtime.task is not None:
        try:
            await asyncio.wait_for(runtime.task, timeout=10)
        except TimeoutError:
            runtime.task.cancel()
    runtime.api_client.close()


@contextlib.asynccontextmanager
async def worker_session() -> AsyncIterator[Worker]:
    """Clients for one `remediation_act` message (the worker's settings say where PostgreSQL is)."""
    settings = load_settings(WorkerSettings)
    if not settings.database_url:
        raise RuntimeError("RINGPILOT_DATABASE_URL: required to remediate")
    pool = await open_pool(settings.database_url, min_size=1, max_size=2, name="remediation-act")
    api_client = await asyncio.to_thread(api_client_from_environment)
    try:
        yield Worker(KubeCluster(api_client), PlaneSet(api_client, pool), PgLedger(pool), pool, worker_owner())
    finally:
        api_client.close()
        await pool.close()
