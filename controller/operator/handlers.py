"""Kopf registration: the only module of the controller with @kopf decorators.

`register` wires one level-based entry per kind (create, update of spec, resume, and a
timer) to that kind's reconciler, plus an audited delete behind our finalizer, startup,
cleanup and liveness probes. Handlers are thin: parse, call, apply the Outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kopf

from controller.api.group import GROUP, VERSION
from controller.api.kinds import KINDS, KindInfo
from controller.api.labels import CORRELATION_LABEL, CREATED_BY_ANNOTATION, FINALIZER, KOPF_ANNOTATION_PREFIX
from controller.api.meta import utcnow
from controller.core.errors import InvalidSpec, Unavailable
from controller.core.outcome import AuditNote, Outcome
from controller.operator.admissionhooks import register_admission
from controller.operator.startup import close_deps, open_deps, probe_database, probe_redis
from controller.reconcile.deps import Deps
from controller.reconcile.reconcilers import reconciler_for
from controller.settings import ControllerSettings
from controller.storage.audit import AuditEvent, record_audit

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


def with_correlation(message: str, correlation_id: str) -> str:
    """Every Event names the correlation ID, so `kubectl get events` ties it to the audit trail."""
    if not correlation_id or correlation_id in message:
        return message
    return f"{message} [correlation {correlation_id}]"


@contextmanager
def kopf_errors() -> Iterator[None]:
    """Translate our error vocabulary into Kopf's."""
    try:
        yield
    except Unavailable as error:
        raise kopf.TemporaryError(str(error), delay=error.retry_after_seconds) from error
    except InvalidSpec as error:
        raise kopf.PermanentError(str(error)) from error


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


async def apply_outcome(info: KindInfo, body: kopf.Body, patch: kopf.Patch, deps: Deps, outcome: Outcome) -> None:
    """Write the outcome: audit rows first (so nothing happens unaudited), then status, labels, Events."""
    labels = dict(body.metadata.labels or {})
    correlation_id = outcome.labels.get(CORRELATION_LABEL) or labels.get(CORRELATION_LABEL) or ""
    for note in outcome.audits:
        await _audit(deps, info, body, correlation_id, note)
    for key, value in outcome.status.items():
        patch.status[key] = value
    for key, value in outcome.labels.items():
        patch.metadata.labels[key] = value
    for event in outcome.events:
        kopf.event(body, type=event.type, reason=event.reason, message=with_correlation(event.message, correlation_id))
    if outcome.requeue_after_seconds is not None:
        raise kopf.TemporaryError(REQUEUED, delay=outcome.requeue_after_seconds)


def _register_kind(registry: kopf.OperatorRegistry, info: KindInfo, settings: ControllerSettings) -> None:
    resource = (GROUP, VERSION, info.plural)

    async def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        deps: Deps = memo["deps"]
        async with deps.lock_for(body.metadata.uid or body.metadata.name or ""):
            with kopf_errors():
                outcome = await reconciler_for(info.kind)(info, dict(body), deps, utcnow())
                await apply_outcome(info, body, patch, deps, outcome)

    async def deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        deps: Deps = memo["deps"]
        correlation_id = (body.metadata.labels or {}).get(CORRELATION_LABEL, "")
        with kopf_errors():
            await _audit(deps, info, body, correlation_id, AuditNote("Deleted", "system:ringpilot"))

    hid = f"reconcile-{info.plural}"
    kopf.on.resume(*resource, registry=registry, id=hid)(reconcile)
    kopf.on.create(*resource, registry=registry, id=hid)(reconcile)
    kopf.on.update(*resource, registry=registry, id=hid, field="spec")(reconcile)
    kopf.timer(
        *resource,
        registry=registry,
        id=f"resync-{info.plural}",
        interval=settings.resync_interval_seconds,
        initial_delay=settings.resync_interval_seconds,
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
        memo["deps"] = await open_deps(settings)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In-cluster service account, else the kubeconfig (KUBECONFIG), via the official client."""
        info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
        return info

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        deps: Deps | None = memo.get("deps")
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
