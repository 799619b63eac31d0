"""Kopf registration: the only module of the controller with @kopf decorators.

`register` wires one level-based entry per kind (create, update of spec, resume, and a
timer while the object is in flight: `reconcile/inflight.py`) to that kind's reconciler, plus an audited
delete behind our finalizer, startup, cleanup and liveness probes. A DeploymentTask in flight is driven
by a daemon instead (operator/driving.py), woken by the watch when its spec changes or the worker announces
a finished step. Assignments, of which there are many, get neither a timer nor a finalizer: the drift
sweep re-checks them, and their deletion is audited from the watch. Handlers are thin: parse, call,
apply the Outcome.
"""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import kopf

from controller.api.group import GROUP, VERSION
from controller.api.identity import SYSTEM_USER
from controller.api.kinds import ASSIGNMENT, CHANGE_REQUEST, DEPLOYMENT_TASK, KINDS, KindInfo
from controller.api.labels import CORRELATION_LABEL, CREATED_BY_ANNOTATION, FINALIZER, KOPF_ANNOTATION_PREFIX
from controller.api.meta import Condition, utcnow
from controller.core import conditions
from controller.core.outcome import AuditNote, EventNote, Outcome, write_outcome
from controller.core.outcome import with_correlation as with_correlation  # re-exported for its callers
from controller.kube.client import CustomObjects, api_client_from_environment
from controller.kube.coreapps import CoreApps, event_manifest
from controller.kube.errors import KubeError
from controller.messaging.broker import STEPS_QUEUE, TURNS_QUEUE, queue_key
from controller.operator.admissionhooks import register_admission
from controller.operator.driving import TaskDriver, listen_for_reports
from controller.operator.kopferrors import clear_outage, kopf_errors, note_outage
from controller.operator.startup import attach_live_tasks, close_deps, open_deps, probe_database, probe_redis
from controller.orchestration.observing import live_task_entry
from controller.reconcile.assignments import wants_reconcile
from controller.reconcile.deps import Deps
from controller.reconcile.inflight import in_flight, wants_resume, wants_wake
from controller.reconcile.reconcilers import reconciler_for
from controller.settings import ControllerSettings
from controller.storage.audit import AuditEvent, record_audit
from controller.telemetry import domainmetrics
from controller.telemetry.metrics import QUEUE_DEPTH
from controller.telemetry.scopes import mark_requeue, reconcile_scope
from controller.telemetry.serving import serve_metrics
from controller.telemetry.tracing import bind_correlation

logger = logging.getLogger(__name__)

#: The `source.component` of the Events the controller posts.
EVENT_COMPONENT = "ringpilot-controller"
#: The message of the TemporaryError a reconcile raises to be called again later; not a failure.
REQUEUED = "Requeued by the reconciler"


#: Kopf's lines for what happens to every object on every resync and admission request: routine, not news.
ROUTINE = re.compile(r"^(Timer|Webhook) '[^']+' succeeded\.$")


class RequeueNoise(logging.Filter):
    """Lowers to DEBUG Kopf's "failed temporarily: Requeued…" records (a requeue is how long waits work) and
    its per-object "Timer/Webhook '…' succeeded." lines, so an idle controller is quiet at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        requeue = record.levelno >= logging.ERROR and REQUEUED in record.getMessage()
        routine = (
            record.levelno == logging.INFO and record.name.startswith("kopf") and ROUTINE.match(record.getMessage())
        )
        if requeue or routine:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


async def _audit(deps: Deps, info: KindInfo, body: kopf.Body, correlation_id: str, note: AuditNote) -> None:
    if deps.pool is None:
        return
    created_by = (body.metadata.annotations or {}).get(CREATED_BY_ANNOTATION)
    detail = {**note.detail, "createdBy": created_by} if created_by else note.detail
    await record_audit(
        deps.pool,
        AuditEvent(
            correlation_id=correlation_id,
            actor=note.actor,
            kind=info.kind,
            namespace=body.metadata.namespace,
            name=body.metadata.name,
            action=note.action,
            reason=note.reason,
            detail=detail,
        ),
    )


@dataclass(frozen=True)
class KopfWriter:
    """`OutcomeWriter` inside a Kopf handler: audit rows in PostgreSQL, the handler's patch, Events.

    Events are posted through `events` with a name derived from the object's uid, generation and the
    Event's content, so a reconcile repeated after a crash (its Event posted, its status patch lost)
    posts nothing new. Without a Kubernetes client they go through Kopf's own poster.
    """

    deps: Deps
    info: KindInfo
    body: kopf.Body
    patch: kopf.Patch
    correlation_id: str
    events: CoreApps | None = None

    async def audit(self, note: AuditNote) -> None:
        await _audit(self.deps, self.info, self.body, self.correlation_id, note)

    async def write(self, status: dict[str, Any], labels: dict[str, str], owned: tuple[Condition, ...] = ()) -> bool:
        for key, value in status.items():
            self.patch.status[key] = value
        if owned:  # set by type on the fresh object, so another writer's conditions survive
            self.patch.fns.append(partial(conditions.merge_into, owned=owned))
        for key, value in labels.items():
            self.patch.metadata.labels[key] = value
        return True

    async def event(self, note: EventNote) -> None:
        if self.events is None:
            kopf.event(self.body, type=note.type, reason=note.reason, message=note.message)
            return
        manifest = event_manifest(dict(self.body), note.reason, note.message, note.type, EVENT_COMPONENT)
        try:
            if not await self.events.post_event_once(manifest):
                logger.debug("Event %s on %s was posted already", note.reason, self.body.metadata.name)
        except KubeError as error:  # an Event is best effort; the audit row is the record
            logger.warning("Could not post Event %s on %s: %s", note.reason, self.body.metadata.name, error)


def event_poster(deps: Deps) -> CoreApps | None:
    """The Events client of the controller: its one Kubernetes client, when it has one."""
    runtime = deps.orchestration or deps.remediation
    return CoreApps(runtime.api_client) if runtime is not None else None


async def apply_outcome(
    info: KindInfo, body: kopf.Body, patch: kopf.Patch, deps: Deps, outcome: Outcome, events: CoreApps | None = None
) -> None:
    """Write the outcome (`write_outcome`: audit rows, status and labels, Events), then ask for the requeue."""
    labels = dict(body.metadata.labels or {})
    correlation_id = outcome.labels.get(CORRELATION_LABEL) or labels.get(CORRELATION_LABEL) or ""
    bind_correlation(correlation_id)
    domainmetrics.observe_outcome(info.kind, body, outcome.status, outcome.audits, utcnow())
    await write_outcome(outcome, KopfWriter(deps, info, body, patch, correlation_id, events), correlation_id)
    if outcome.requeue_after_seconds is not None:
        mark_requeue()
        raise kopf.TemporaryError(REQUEUED, delay=outcome.requeue_after_seconds)


#: The Kopf index of DeploymentTasks in flight by app (also the keyword its handlers receive it by).
LIVE_TASKS_INDEX = "live_deploymenttasks"


def attach_index(deps: Deps, kwargs: dict[str, Any]) -> None:
    """Hand the index to the engines the first time a handler runs (Kopf fills indices before handlers)."""
    if LIVE_TASKS_INDEX in kwargs:
        attach_live_tasks(deps, kwargs[LIVE_TASKS_INDEX])


def metrics_refresher(deps: Deps) -> Any:
    """What a scrape of the controller's /metrics updates first: queue depths and scrape-time gauges."""

    async def refresh() -> None:
        domainmetrics.refresh(utcnow())
        if deps.redis is not None:
            for queue in (STEPS_QUEUE, TURNS_QUEUE):
                QUEUE_DEPTH.labels(queue).set(await deps.redis.llen(queue_key(queue)))

    return refresh


def _register_kind(registry: kopf.OperatorRegistry, info: KindInfo, settings: ControllerSettings) -> None:
    resource = (GROUP, VERSION, info.plural)

    async def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int = 0, **kwargs: Any) -> None:
        deps: Deps = memo["deps"]
        attach_index(deps, kwargs)
        correlation_id = (body.metadata.labels or {}).get(CORRELATION_LABEL, "")
        async with deps.lock_for(body.metadata.uid or body.metadata.name or ""):
            scope = reconcile_scope(info.kind, body.metadata.namespace, body.metadata.name, correlation_id)
            with scope, kopf_errors(retry):
                try:
                    outcome = await reconciler_for(info.kind)(info, dict(body), deps, utcnow())
                    outcome = clear_outage(body, patch, outcome) or outcome
                    await apply_outcome(info, body, patch, deps, outcome, memo.get("events"))
                except kopf.TemporaryError:
                    raise
                except Exception as error:
                    note_outage(body, patch, error)
                    raise

    async def deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        deps: Deps = memo["deps"]
        correlation_id = (body.metadata.labels or {}).get(CORRELATION_LABEL, "")
        domainmetrics.forget(info.kind, body.metadata.uid or "")
        with kopf_errors():
            await _audit(deps, info, body, correlation_id, AuditNote("Deleted", SYSTEM_USER))

    async def watched(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
        deps: Deps = memo["deps"]
        attach_index(deps, kwargs)  # an Assignment's first event: the sweep reads the index from now on
        if event.get("type") == "DELETED":
            await deleted(body=body, memo=memo)
        elif deps.remediation is not None:
            deps.remediation.sweeper.notice(dict(body))  # new or changed: checked at the next tick

    def live(body: kopf.Body, **_: Any) -> bool:
        return in_flight(info.kind, body)

    def resumable(body: kopf.Body, **_: Any) -> bool:
        return wants_resume(info.kind, body)

    def unswept(body: kopf.Body, memo: kopf.Memo, **_: Any) -> bool:
        deps: Deps | None = memo.get("deps")
        return wants_reconcile(body, deps is not None and deps.remediation is not None)

    if info.kind == DEPLOYMENT_TASK.kind:
        _register_driven(registry, info, resource, live)
        # a deletion audited from the watch: with no on-delete handler Kopf keeps no diff-base on a task
        kopf.on.event(*resource, registry=registry, id=f"audit-gone-{info.plural}", when=gone_event)(deleted)
        return
    hid = f"reconcile-{info.plural}"
    if info.kind == ASSIGNMENT.kind:
        # Kopf takes only what the sweep cannot (reconcile/assignments.py); the rest it leaves alone, storing
        # nothing on them. Every event notices the sweep, and a deletion is audited from the watch.
        kopf.on.resume(*resource, registry=registry, id=hid, when=unswept)(reconcile)
        kopf.on.create(*resource, registry=registry, id=hid, when=unswept)(reconcile)
        kopf.on.update(*resource, registry=registry, id=hid, field="spec", when=unswept)(reconcile)
        kopf.on.event(*resource, registry=registry, id=f"watch-{info.plural}")(watched)
        return
    kopf.on.resume(*resource, registry=registry, id=hid, when=resumable)(reconcile)
    kopf.on.create(*resource, registry=registry, id=hid)(reconcile)
    kopf.on.update(*resource, registry=registry, id=hid, field="spec")(reconcile)
    if info.kind == CHANGE_REQUEST.kind:
        kopf.on.event(*resource, registry=registry, id=f"wake-task-{info.plural}", when=judged)(wake_task)
    kopf.timer(
        *resource,
        registry=registry,
        id=f"resync-{info.plural}",
        interval=settings.resync_interval_seconds,
        initial_delay=settings.resync_interval_seconds,
        when=live,
    )(reconcile)
    kopf.on.delete(*resource, registry=registry, id=f"audit-delete-{info.plural}")(deleted)


async def task_driver(info: KindInfo, deps: Deps, stack: AsyncExitStack) -> TaskDriver:
    """The driver of `info`'s objects in flight, on the controller's Kubernetes client."""
    runtime = deps.orchestration or deps.remediation
    if runtime is not None:
        api_client = runtime.api_client
    else:  # no engines (no PostgreSQL): admission and status still run; Kopf has logged in, so can we
        api_client = await asyncio.to_thread(api_client_from_environment)
        stack.callback(api_client.close)
    reconcile = reconciler_for(info.kind)
    events = CoreApps(api_client)

    async def run(body: dict[str, Any]) -> Outcome:
        return await reconcile(info, body, deps, utcnow())

    def notes(body: dict[str, Any], correlation_id: str) -> KopfWriter:
        return KopfWriter(deps, info, kopf.Body(cast(kopf.RawBody, body)), kopf.Patch(), correlation_id, events)

    return TaskDriver(info, CustomObjects(api_client), run, notes, deps.lock_for)


def gone_event(type: str | None = None, **_: Any) -> bool:
    """The watch says the object is gone (an on-event filter)."""
    return type == "DELETED"


def judged(body: kopf.Body, **_: Any) -> bool:
    """A ChangeRequest whose reconcile has judged its current decisions (its task may count them now)."""
    status = body.get("status") or {}
    return bool(status) and status.get("observedGeneration") == body.metadata.get("generation")


async def wake_task(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Wake the loop of the ChangeRequest's task, so an approval is acted on at once."""
    driver: TaskDriver | None = memo.get("driver")
    task = (body.get("spec") or {}).get("task")
    if driver is not None and task:
        driver.wake_named(body.metadata.namespace or "default", str(task))


async def index_live(body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    """A task in flight, under its app: what a new task's validation checks for an earlier change."""
    return {str((body.get("spec") or {}).get("app") or ""): live_task_entry(body)}


def _register_driven(
    registry: kopf.OperatorRegistry, info: KindInfo, resource: tuple[str, str, str], live: Any
) -> None:
    """A daemon per object in flight runs its rounds; the watch wakes it (operator/driving.py).

    Kopf keeps the in-flight tasks by app in an index (filled before any handler runs, an entry dropped
    when its task stops matching `live`), so validating a task reads no list of every task ever stored.
    """

    async def drive(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **kwargs: Any) -> None:
        driver: TaskDriver = memo["driver"]
        attach_index(memo["deps"], kwargs)
        meta = body.metadata
        await driver.drive(meta.namespace or "default", meta.name or "", meta.uid or "", stopped.wait())

    async def wake(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        driver: TaskDriver | None = memo.get("driver")
        if driver is not None:
            driver.wake(body.metadata.uid or "")

    def woken(body: kopf.Body, **_: Any) -> bool:
        return wants_wake(body)

    kopf.index(*resource, registry=registry, id=LIVE_TASKS_INDEX, when=live)(index_live)
    # Stopped (finished, deleted, paused for a peer): the round in progress finishes first, then the loop exits.
    kopf.daemon(
        *resource,
        registry=registry,
        id=f"drive-{info.plural}",
        when=live,
        cancellation_backoff=30.0,
        cancellation_timeout=10.0,
    )(drive)
    kopf.on.event(*resource, registry=registry, id=f"wake-{info.plural}", when=woken)(wake)


def register(registry: kopf.OperatorRegistry, settings: ControllerSettings) -> None:
    """Register every handler of the operator on `registry`."""

    @kopf.on.startup(registry=registry)
    async def startup(memo: kopf.Memo, **kwargs: Any) -> None:
        settings_: kopf.OperatorSettings = kwargs["settings"]
        settings_.persistence.finalizer = FINALIZER
        settings_.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_ANNOTATION_PREFIX)
        settings_.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=KOPF_ANNOTATION_PREFIX, key="last-handled-configuration"
        )
        settings_.posting.level = logging.WARNING  # our Events are posted by the Outcome; Kopf's INFO is routine
        settings_.watching.server_timeout = 300
        settings_.batching.error_delays = [1, 2, 4, 8]  # the watch's own API errors: back within 10 s
        memo["deps"] = deps = await open_deps(settings)
        memo["events"] = event_poster(deps)
        memo["telemetry"] = stack = AsyncExitStack()
        memo["driver"] = driver = await task_driver(DEPLOYMENT_TASK, deps, stack)
        await stack.enter_async_context(listen_for_reports(settings.database_url, driver, deps.pool))
        await stack.enter_async_context(serve_metrics(settings.metrics_port, refresh=metrics_refresher(deps)))

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In-cluster service account, else the kubeconfig (KUBECONFIG), via the official client."""
        info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
        return info

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        deps: Deps | None = memo.get("deps")
        telemetry: AsyncExitStack | None = memo.get("telemetry")
        if telemetry is not None:
            await telemetry.aclose()
        if deps is not None:
            await close_deps(deps)

    @kopf.on.probe(registry=registry, id="database")
    async def database(memo: kopf.Memo, **_: Any) -> str:
        return await probe_database(memo["deps"])

    @kopf.on.probe(registry=registry, id="redis")
    async def redis(memo: kopf.Memo, **_: Any) -> str:
        return await probe_redis(memo["deps"])

    for info in KINDS:
        _register_kind(registry, info, settings)
    register_admission(registry, settings)
