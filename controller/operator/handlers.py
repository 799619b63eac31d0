"""Kopf registration: the only module of the controller with @kopf decorators.

`register` wires one level-based entry per kind (create, update of spec, resume, and a
timer while the object is in flight: `reconcile/inflight.py`) to that kind's reconciler, plus an audited
delete behind our finalizer, startup, cleanup and liveness probes. Assignments, of which there are
many, get neither a timer nor a finalizer: the drift sweep re-checks them, and their deletion is audited
from the watch. Handlers are thin: parse, call, apply the Outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import kopf

from controller.api.group import GROUP, VERSION
from controller.api.identity import SYSTEM_USER
from controller.api.kinds import ASSIGNMENT, KINDS, KindInfo
from controller.api.labels import CORRELATION_LABEL, CREATED_BY_ANNOTATION, FINALIZER, KOPF_ANNOTATION_PREFIX
from controller.api.meta import Condition, utcnow
from controller.core import conditions
from controller.core.errors import DEFAULT_RETRY_SECONDS, Unavailable
from controller.core.outcome import AuditNote, EventNote, Outcome, write_outcome
from controller.core.outcome import with_correlation as with_correlation  # re-exported for its callers
from controller.messaging.broker import STEPS_QUEUE, TURNS_QUEUE, queue_key
from controller.operator.admissionhooks import register_admission
from controller.operator.startup import close_deps, open_deps, probe_database, probe_redis
from controller.reconcile.deps import Deps
from controller.reconcile.inflight import in_flight
from controller.reconcile.reconcilers import reconciler_for
from controller.settings import ControllerSettings
from controller.storage.audit import AuditEvent, record_audit
from controller.telemetry import domainmetrics
from controller.telemetry.metrics import QUEUE_DEPTH
from controller.telemetry.scopes import mark_requeue, reconcile_scope
from controller.telemetry.serving import serve_metrics
from controller.telemetry.tracing import bind_correlation

logger = logging.getLogger(__name__)

#: The message of the TemporaryError a reconcile raises to be called again later; not a failure.
REQUEUED = "Requeued by the reconciler"


class RequeueNoise(logging.Filter):
    """Lowers Kopf's "failed temporarily: Requeued…" records to DEBUG: a requeue is how long waits work."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and REQUEUED in record.getMessage():
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


@contextmanager
def kopf_errors() -> Iterator[None]:
    """Translate our error vocabulary into Kopf's: `Unavailable` is a delayed retry."""
    try:
        yield
    except Unavailable as error:
        delay = DEFAULT_RETRY_SECONDS if error.retry_after_seconds is None else error.retry_after_seconds
        raise kopf.TemporaryError(str(error), delay=delay) from error


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
    """`OutcomeWriter` inside a Kopf handler: audit rows in PostgreSQL, the handler's patch, `kopf.event`."""

    deps: Deps
    info: KindInfo
    body: kopf.Body
    patch: kopf.Patch
    correlation_id: str

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
        kopf.event(self.body, type=note.type, reason=note.reason, message=note.message)


async def apply_outcome(info: KindInfo, body: kopf.Body, patch: kopf.Patch, deps: Deps, outcome: Outcome) -> None:
    """Write the outcome (`write_outcome`: audit rows, status and labels, Events), then ask for the requeue."""
    labels = dict(body.metadata.labels or {})
    correlation_id = outcome.labels.get(CORRELATION_LABEL) or labels.get(CORRELATION_LABEL) or ""
    bind_correlation(correlation_id)
    domainmetrics.observe_outcome(info.kind, body, outcome.status, outcome.audits, utcnow())
    await write_outcome(outcome, KopfWriter(deps, info, body, patch, correlation_id), correlation_id)
    if outcome.requeue_after_seconds is not None:
        mark_requeue()
        raise kopf.TemporaryError(REQUEUED, delay=outcome.requeue_after_seconds)


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

    async def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        deps: Deps = memo["deps"]
        correlation_id = (body.metadata.labels or {}).get(CORRELATION_LABEL, "")
        async with deps.lock_for(body.metadata.uid or body.metadata.name or ""):
            with reconcile_scope(info.kind, body.metadata.namespace, body.metadata.name, correlation_id), kopf_errors():
                outcome = await reconciler_for(info.kind)(info, dict(body), deps, utcnow())
                await apply_outcome(info, body, patch, deps, outcome)

    async def deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        deps: Deps = memo["deps"]
        correlation_id = (body.metadata.labels or {}).get(CORRELATION_LABEL, "")
        domainmetrics.forget(info.kind, body.metadata.uid or "")
        with kopf_errors():
            await _audit(deps, info, body, correlation_id, AuditNote("Deleted", SYSTEM_USER))

    async def gone(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        if event.get("type") == "DELETED":
            await deleted(body=body, memo=memo)

    def live(body: kopf.Body, **_: Any) -> bool:
        return in_flight(info.kind, body)

    hid = f"reconcile-{info.plural}"
    kopf.on.resume(*resource, registry=registry, id=hid)(reconcile)
    kopf.on.create(*resource, registry=registry, id=hid)(reconcile)
    kopf.on.update(*resource, registry=registry, id=hid, field="spec")(reconcile)
    if info.kind == ASSIGNMENT.kind:
        kopf.on.event(*resource, registry=registry, id=f"audit-gone-{info.plural}")(gone)
        return
    kopf.timer(
        *resource,
        registry=registry,
        id=f"resync-{info.plural}",
        interval=settings.resync_interval_seconds,
        initial_delay=settings.resync_interval_seconds,
        when=live,
    )(reconcile)
    kopf.on.delete(*resource, registry=registry, id=f"audit-delete-{info.plural}")(deleted)


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
        settings_.posting.level = logging.INFO
        settings_.watching.server_timeout = 300
        settings_.batching.error_delays = [1, 2, 5, 10, 30, 60]
        memo["deps"] = deps = await open_deps(settings)
        memo["telemetry"] = stack = AsyncExitStack()
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
