"""Driving a DeploymentTask in flight: one loop per task, woken by events, asleep until a wait is due.

Kopf runs `TaskDriver.drive` as the daemon of every DeploymentTask in flight (reconcile/inflight.py), and
stops it when the task is finished, deleted, or the operator pauses for a peer. Each round reads the task
fresh, runs its reconcile and writes the Outcome (`ApiWriter`: audit rows, Events, then labels and status
through the API, the order of a Kopf handler whose patch lands last). Then the loop sleeps until the Outcome's
requeue (a soak, a backoff, a review deadline, the lease of a running step) or until `wake` is called:
for a spec change (the watch), when the worker announces a finished step (a PostgreSQL NOTIFY naming the
task, `listen_for_reports`), or when the task's ChangeRequest has judged new decisions. So a worker's
report is acted on at once, a task waiting on time costs nothing until it is due, and a finished task has
no loop at all. A restarted controller gets a daemon per task still in flight, which carries on from the
status (level-based); a lost announcement costs one lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from controller.api.kinds import KindInfo
from controller.api.labels import CORRELATION_LABEL
from controller.api.meta import Condition, utcnow
from controller.core import conditions
from controller.core.errors import Unavailable
from controller.core.outcome import AuditNote, EventNote, Outcome, OutcomeWriter, write_outcome
from controller.kube.client import CustomObjects
from controller.kube.errors import KubeError
from controller.operator import outages
from controller.storage import claims
from controller.storage.db import Pool, revive
from controller.storage.listening import listen
from controller.telemetry import domainmetrics
from controller.telemetry.scopes import mark_requeue, reconcile_scope
from controller.telemetry.tracing import bind_correlation

logger = logging.getLogger(__name__)

Json = dict[str, Any]
#: What a round runs: the kind's reconcile over a fresh body.
Reconcile = Callable[[Json], Awaitable[Outcome]]
#: Builds the writer of audit rows and Events for a body and its correlation ID (the Kopf handlers' own).
NotesWriter = Callable[[Json, str], OutcomeWriter]

#: How long a task with nothing due sleeps before it looks again (its own lease against a lost wake).
IDLE_ROUND_SECONDS = 30.0
#: A reconcile that fails for a reason that is not an outage is tried again after this long (Kopf's default).
BUG_RETRY_SECONDS = 60.0


@dataclass
class ApiWriter:
    """`OutcomeWriter` of a round: audit rows and Events by `notes`, then labels and status through the API.

    `write` only holds the status and labels; `flush` sends them after the Events, as a Kopf handler's
    patch lands after its Events: a crash in between re-posts the Events under the same names (nothing
    new, kube/coreapps.py), where the other order would lose them for good.
    """

    objects: CustomObjects
    info: KindInfo
    body: Json
    notes: OutcomeWriter
    pending: tuple[dict[str, Any], dict[str, str], tuple[Condition, ...]] | None = None

    async def audit(self, note: AuditNote) -> None:
        await self.notes.audit(note)

    async def event(self, note: EventNote) -> None:
        await self.notes.event(note)

    async def write(self, status: dict[str, Any], labels: dict[str, str], owned: tuple[Condition, ...] = ()) -> bool:
        self.pending = (status, labels, owned)
        return True

    async def flush(self) -> bool:
        """Send what `write` held; False when the object is gone."""
        if self.pending is None:
            return True
        (status, labels, owned), self.pending = self.pending, None
        meta = self.body.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or "default"), str(meta["name"])
        try:
            if owned:  # by type on the conditions as read this round (the controller is their one writer)
                holder: Json = {"status": {"conditions": status.get("conditions", _conditions(self.body))}}
                conditions.merge_into(holder, owned)
                status = {**status, "conditions": holder["status"]["conditions"]}
            if labels:  # before the status: whoever sees observedGeneration sees the labels of that round too
                await self.objects.patch(self.info, namespace, name, {"metadata": {"labels": labels}})
            if status:
                await self.objects.patch_status(self.info, namespace, name, status)
        except KubeError as error:
            if error.not_found:
                return False
            raise
        return True


def _conditions(body: Json) -> list[Json]:
    return list((body.get("status") or {}).get("conditions") or [])


def with_cleared_outage(body: Json, outcome: Outcome) -> Outcome:
    """The outcome with `Waiting` set False when the last round waited out an outage."""
    back = outages.cleared(body, utcnow())
    return outcome if back is None else replace(outcome, conditions=(*outcome.conditions, back))


@dataclass
class TaskDriver:
    """The loops of one kind's objects in flight, and the wake-ups that cut their sleep short."""

    info: KindInfo
    objects: CustomObjects
    reconcile: Reconcile
    notes: NotesWriter
    lock_for: Callable[[str], asyncio.Lock]
    wakes: dict[str, asyncio.Event] = field(default_factory=dict)
    uids: dict[tuple[str, str], str] = field(default_factory=dict)

    def wake_named(self, namespace: str, name: str) -> bool:
        """`wake` by name: for a ChangeRequest whose decisions its task counts."""
        uid = self.uids.get((namespace, name))
        return uid is not None and self.wake(uid)

    def wake(self, uid: str) -> bool:
        """Cut the sleep of the object's loop short; False when it has none (it is not in flight)."""
        event = self.wakes.get(uid)
        if event is None:
            return False
        event.set()
        return True

    def wake_all(self) -> None:
        """Wake every loop: announcements may have been missed (the listening connection was lost)."""
        for event in self.wakes.values():
            event.set()

    async def drive(self, namespace: str, name: str, uid: str, stopped: Awaitable[Any]) -> None:
        """Run rounds until `stopped` resolves (Kopf's daemon stop flag)."""
        wake = self.wakes.setdefault(uid, asyncio.Event())
        self.uids[(namespace, name)] = uid
        stopping = asyncio.ensure_future(stopped)
        retry = 0
        try:
            while not stopping.done():
                wake.clear()
                delay, retry = await self.round(namespace, name, uid, retry)
                if wake.is_set() or stopping.done():
                    continue
                waking = asyncio.ensure_future(wake.wait())
                await asyncio.wait({waking, stopping}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
                waking.cancel()
        finally:
            stopping.cancel()
            if self.wakes.get(uid) is wake:
                del self.wakes[uid]
                self.uids.pop((namespace, name), None)

    async def round(self, namespace: str, name: str, uid: str, retry: int) -> tuple[float, int]:
        """One reconcile of the object as the API holds it now; (seconds until the next round, retries so far)."""
        async with self.lock_for(uid):
            try:
                body = await self.objects.find_raw(self.info, namespace, name)
            except KubeError as error:
                logger.warning("%s %s/%s could not be read: %s", self.info.kind, namespace, name, error)
                return outages.retry_delay_seconds(retry), retry + 1
            if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
                return IDLE_ROUND_SECONDS, 0  # Kopf stops this loop on the deletion's event
            labelled = ((body.get("metadata") or {}).get("labels") or {}).get(CORRELATION_LABEL, "")
            bind_correlation(labelled)
            try:
                with reconcile_scope(self.info.kind, namespace, name, labelled):
                    outcome = with_cleared_outage(body, await self.reconcile(body))
                    correlation_id = outcome.labels.get(CORRELATION_LABEL) or labelled  # set on the first round
                    bind_correlation(correlation_id)
                    domainmetrics.observe_outcome(self.info.kind, body, outcome.status, outcome.audits, utcnow())
                    writer = ApiWriter(self.objects, self.info, body, self.notes(body, correlation_id))
                    await write_outcome(outcome, writer, correlation_id)
                    await writer.flush()
                    if outcome.requeue_after_seconds is not None:
                        mark_requeue()
            except Unavailable as error:
                delay = error.retry_after_seconds
                return (outages.retry_delay_seconds(retry) if delay is None else delay), retry + 1
            except Exception as error:
                return await self._failed(body, error, retry), retry + 1
        wait = outcome.requeue_after_seconds
        return (IDLE_ROUND_SECONDS if wait is None else wait), 0

    async def _failed(self, body: Json, error: Exception, retry: int) -> float:
        """Name an outage on the object (`Waiting`) and retry soon; a bug is logged and retried later."""
        meta = body.get("metadata") or {}
        found = outages.dependency_of(error)
        if found is None:
            logger.exception("Reconciling %s %s/%s failed", self.info.kind, meta.get("namespace"), meta.get("name"))
            return BUG_RETRY_SECONDS
        condition = outages.waiting_condition(body, *found, error, utcnow())
        logger.warning("%s %s/%s waits: %s", self.info.kind, meta.get("namespace"), meta.get("name"), condition.message)
        try:
            writer = ApiWriter(self.objects, self.info, body, self.notes(body, ""))
            await writer.write({}, {}, (condition,))
            await writer.flush()
        except KubeError as write_error:  # the API may be what is down
            logger.debug("Could not write Waiting on %s: %s", meta.get("name"), write_error)
        return outages.retry_delay_seconds(retry)


@asynccontextmanager
async def listen_for_reports(dsn: str | None, driver: TaskDriver, pool: Pool | None = None) -> AsyncIterator[None]:
    """While entered, each step report the worker announces wakes its task's loop (nothing without a database).

    Each time the listening connection opens (again, after an outage), every loop is woken and `pool` is
    revived: PostgreSQL is back, so a task waiting it out resumes now, not after the pool's own backoff.
    """
    if not dsn:
        yield
        return

    async def connected() -> None:
        driver.wake_all()
        if pool is not None:
            await revive(pool)

    task = asyncio.create_task(listen(dsn, claims.REPORTS_CHANNEL, driver.wake, connected), name="step-reports")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
