"""Building and closing the controller's dependencies: policy, PostgreSQL pool, broker, Redis, the engines.

Called by the startup and cleanup handlers; migrations are applied here too, so a fresh database is
ready before the first reconcile. `start_orchestration` builds the `KubeWorld` the DeploymentTask
reconcile reads and writes through; `start_remediation` builds the Remediation engine and starts the
drift sweep's timer task. Both share the process's one Kubernetes client and plane set. Probes report
each dependency's health.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.api.policy import Policy, load_policy
from controller.kube.client import CREDENTIAL_ERRORS, ApiClient, api_client_from_environment
from controller.messaging.broker import STEPS_QUEUE, RetryPolicy, build_broker
from controller.messaging.dispatching import Dispatcher
from controller.orchestration.observing import KubeWorld, LiveTasks
from controller.planes.catalog import PlaneSet
from controller.reconcile.deps import Deps
from controller.reconcile.statusmemo import StatusMemo
from controller.remediation.cluster import KubeCluster
from controller.remediation.ledger import PgLedger
from controller.remediation.ports import ACT_ACTOR, ActRequest, RemediationPorts, act_key
from controller.remediation.provenance import PgProvenance
from controller.remediation.sweeping import DriftSweeper
from controller.settings import ControllerSettings
from controller.storage import claims
from controller.storage.audit import AuditEvent, AuditRecord, record_audit
from controller.storage.cache import ping, redis_client
from controller.storage.claims import StepClaim
from controller.storage.db import Pool, open_pool
from controller.storage.migrating import migrate_async

logger = logging.getLogger(__name__)


@dataclass
class OrchestrationRuntime:
    """What the controller keeps in `deps.orchestration`."""

    world: KubeWorld
    api_client: Any
    memo: StatusMemo = field(default_factory=StatusMemo)


@dataclass
class RemediationRuntime:
    """What the controller keeps in `deps.remediation`."""

    ports: RemediationPorts
    sweeper: DriftSweeper
    api_client: Any
    memo: StatusMemo = field(default_factory=StatusMemo)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


async def _api_client(what: str) -> ApiClient | None:
    try:
        return await asyncio.to_thread(api_client_from_environment)
    except CREDENTIAL_ERRORS as error:
        logger.warning("%s: no Kubernetes credentials (%s)", what, error)
        return None


async def start_orchestration(
    pool: Pool | None, dispatcher: Dispatcher | None, planes: PlaneSet | None = None
) -> OrchestrationRuntime | None:
    """The controller's orchestration; None (logged) without PostgreSQL or Kubernetes credentials."""
    if pool is None:
        logger.warning("DeploymentTasks are not orchestrated: no PostgreSQL (RINGPILOT_DATABASE_URL)")
        return None
    api_client = planes.api_client if planes is not None else await _api_client("DeploymentTasks are not orchestrated")
    if api_client is None:
        return None
    return OrchestrationRuntime(
        KubeWorld(api_client, pool, planes or PlaneSet(api_client, pool), dispatcher), api_client
    )


def attach_live_tasks(deps: Deps, live_tasks: LiveTasks) -> None:
    """Point the engines' "tasks in flight" reads at the operator's Kopf index (no list of every task).

    Called from the resource handlers, which Kopf runs only once its indices are filled.
    """
    runtime: OrchestrationRuntime | None = deps.orchestration
    if runtime is not None and runtime.world.live_tasks is not live_tasks:
        runtime.world.attach(live_tasks)
    remediation: RemediationRuntime | None = deps.remediation
    cluster = remediation.ports.cluster if remediation is not None else None
    if isinstance(cluster, KubeCluster) and cluster.live_tasks is not live_tasks:
        cluster.attach(live_tasks)


async def stop_orchestration(runtime: OrchestrationRuntime | None) -> None:
    if runtime is not None:
        runtime.api_client.close()


def dispatch_with(dispatcher: Dispatcher) -> Callable[[ActRequest], None]:
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
    planes: PlaneSet | None = None,
) -> RemediationRuntime | None:
    """Build the engine and start the drift sweep; None (logged) without PostgreSQL or credentials."""
    if pool is None:
        logger.warning("Drift checks and remediation are off: no PostgreSQL (RINGPILOT_DATABASE_URL)")
        return None
    api_client = planes.api_client if planes is not None else await _api_client("Drift checks and remediation are off")
    if api_client is None:
        return None
    cluster = KubeCluster(api_client)
    planes = planes or PlaneSet(api_client, pool)
    ledger = PgLedger(pool)

    async def audit(event: AuditEvent) -> AuditRecord:
        return await record_audit(pool, event)

    async def claim(key: str) -> StepClaim | None:
        return await claims.get(pool, key)

    provenance = PgProvenance(api_client, pool)
    sweeper = DriftSweeper(cluster, planes, ledger, policy, audit=audit, namespaces=namespaces, provenance=provenance)
    ports = RemediationPorts(
        cluster,
        planes,
        ledger,
        policy,
        claim=claim,
        enqueue=dispatch_with(dispatcher) if dispatcher is not None else None,
        expedite=sweeper.expedite,
        provenance=provenance,
    )
    runtime = RemediationRuntime(ports, sweeper, api_client)
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


async def open_deps(settings: ControllerSettings) -> Deps:
    policy = load_policy(settings.policy_file)
    deps = Deps(settings=settings, policy=policy)
    if settings.database_url:
        applied = await migrate_async(settings.database_url)
        if applied:
            logger.info("Applied migrations %s", ", ".join(applied))
        deps.pool = await open_pool(settings.database_url)
    if settings.redis_url:
        deps.redis = redis_client(settings.redis_url)
        deps.dispatcher = Dispatcher(build_broker(settings.redis_url, RetryPolicy(), set_global=False))
    planes = None
    if deps.pool is not None:
        api_client = await _api_client("DeploymentTasks, drift checks and remediation are off")
        planes = PlaneSet(api_client, deps.pool) if api_client is not None else None
    if planes is not None:  # one Kubernetes client and one plane set for the whole process
        deps.remediation = await start_remediation(
            policy, deps.pool, deps.dispatcher, settings.namespace, planes=planes
        )
        deps.orchestration = await start_orchestration(deps.pool, deps.dispatcher, planes)
    else:
        deps.remediation = await start_remediation(policy, deps.pool, deps.dispatcher, settings.namespace)
        deps.orchestration = await start_orchestration(deps.pool, deps.dispatcher)
    return deps


async def close_deps(deps: Deps) -> None:
    await stop_remediation(deps.remediation)
    await stop_orchestration(deps.orchestration)
    if deps.pool is not None:
        await deps.pool.close()
    if deps.dispatcher is not None:
        deps.dispatcher.broker.close()
    if deps.redis is not None:
        await deps.redis.aclose()


async def probe_database(deps: Deps) -> str:
    if deps.pool is None:
        return "not configured"
    async with deps.pool.connection() as conn:
        await conn.execute("SELECT 1")
    return "ok"


async def probe_redis(deps: Deps) -> str:
    if deps.redis is None:
        return "not configured"
    if not await ping(deps.redis):
        raise RuntimeError("Redis does not answer")
    return "ok"
