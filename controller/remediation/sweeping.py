"""The drift sweep: a timer in the controller that checks every Assignment at its interval, batched.

Level-based: each tick takes the Assignments whose check is due (by criticality, from the policy),
groups their targets by plane and namespace (or ring), asks the plane to observe each group once,
and writes only the statuses that changed, so API calls grow with namespaces, not Assignments. In
Enforce mode it opens a Remediation for new drift (`detecting.assess_drift_check` decides). The Assignments come
from a periodic list plus a notice of every watch event, so a missed event never hides drift. The first
check of a new or changed spec writes its `observedGeneration` too (`detecting.first_seen`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from controller.api.assignment import Assignment, DriftMode
from controller.api.meta import utcnow
from controller.api.policy import Policy
from controller.api.remediation import (
    RemediationPhase,
)
from controller.api.semantics import check
from controller.core.errors import Unavailable
from controller.core.outcome import Outcome, write_outcome
from controller.planes.base import Observation, PlaneError, TargetRef
from controller.planes.catalog import PlaneSource
from controller.remediation.checkwriting import AuditSink, CheckWriter
from controller.remediation.classifying import classify_drift, target_of
from controller.remediation.cluster import Cluster, ObjectRef, tasks_in_flight
from controller.remediation.detecting import (
    CheckResult,
    OpenRemediation,
    assess_drift_check,
    find_conflicts,
    first_seen,
)
from controller.remediation.ledger import Ledger, RecordInfo
from controller.remediation.opening import open_remediation
from controller.remediation.provenance import ProvenanceSource, cleared, problem, refused_check
from controller.telemetry.metrics import DRIFT_SWEEP_SECONDS
from controller.telemetry.scopes import timed

logger = logging.getLogger(__name__)

GroupKey = tuple[str, str]


@dataclass
class Entry:
    """One Assignment the sweep knows, and when it is next due."""

    resource: Assignment
    raw_status: dict[str, Any]
    next_check_at: datetime | None = None

    @property
    def uid(self) -> str:
        return self.resource.metadata.uid or f"{self.resource.metadata.namespace}/{self.resource.metadata.name}"


@dataclass
class CycleReport:
    """What one cycle did (the benchmark prints it)."""

    checked: int = 0
    groups: int = 0
    written: int = 0
    opened: int = 0
    errors: int = 0
    drifted: list[str] = field(default_factory=list)


def group_key(target: TargetRef) -> GroupKey:
    """One observation per namespace (kubernetes) or per ring (device planes)."""
    return target.plane, target.namespace or f"ring-{target.ring}"


def tick_seconds(policy: Policy) -> float:
    """How often the sweep looks for due checks: a tenth of the shortest interval, 0.2 s to 10 s."""
    intervals = policy.remediation.check_interval_seconds
    shortest = min(intervals.critical, intervals.high, intervals.standard, intervals.low)
    return min(10.0, max(0.2, shortest / 10))


def relist_seconds(policy: Policy) -> float:
    """How often the sweep re-reads every Assignment: the shortest interval, 1 s to 300 s."""
    intervals = policy.remediation.check_interval_seconds
    shortest = min(intervals.critical, intervals.high, intervals.standard, intervals.low)
    return float(min(300, max(1, shortest)))


class DriftSweeper:
    """Checks due Assignments each tick; see the module docstring."""

    def __init__(
        self,
        cluster: Cluster,
        planes: PlaneSource,
        ledger: Ledger,
        policy: Policy,
        *,
        audit: AuditSink | None = None,
        namespaces: list[str] | None = None,
        concurrency: int = 8,
        tick: float | None = None,
        provenance: ProvenanceSource | None = None,
    ) -> None:
        self.cluster = cluster
        self.planes = planes
        self.ledger = ledger
        self.policy = policy
        self.audit = audit
        self.namespaces = namespaces
        self.provenance = provenance
        self.tick = tick if tick is not None else tick_seconds(policy)
        self.entries: dict[str, Entry] = {}
        self.last_relist: datetime | None = None
        self._limit = asyncio.Semaphore(concurrency)
        self._written_resets: dict[str, datetime] = {}

    # ---- what the sweep knows ----------------------------------------------------------------

    def notice(self, body: dict[str, Any]) -> None:
        """An Assignment as the watch delivered it: a new one, or a changed spec, is checked at the next tick."""
        try:
            resource = Assignment.from_body(body)
        except ValidationError:
            return
        if check("Assignment", resource.spec):
            return
        uid = resource.metadata.uid or f"{resource.metadata.namespace}/{resource.metadata.name}"
        entry = self.entries.get(uid)
        if entry is None:
            status = dict(body.get("status") or {})
            self.entries[uid] = Entry(resource, status, self.first_check_at(resource, status, utcnow()))
        elif resource.metadata.generation >= entry.resource.metadata.generation:
            changed = resource.metadata.generation > entry.resource.metadata.generation
            entry.resource, entry.raw_status = resource, dict(body.get("status") or {})
            if changed:
                entry.next_check_at = None

    def expedite(self, uid: str) -> None:
        """Check this Assignment at the next tick (e.g. a Remediation of it just finished)."""
        entry = self.entries.get(uid)
        if entry is not None:
            entry.next_check_at = None

    async def relist(self, now: datetime) -> None:
        """Re-read every Assignment: new ones are due at once, gone ones are forgotten."""
        seen: dict[str, Entry] = {}
        for body in await self.cluster.list_assignments(self.namespaces):
            try:
                resource = Assignment.from_body(body)
            except ValidationError:
                continue
            if check("Assignment", resource.spec):
                continue
            old = self.entries.get(resource.metadata.uid or "")
            entry = Entry(resource, dict(body.get("status") or {}))
            if old is not None and old.resource.metadata.generation == resource.metadata.generation:
                entry.next_check_at = old.next_check_at
            elif old is None:
                entry.next_check_at = self.first_check_at(resource, entry.raw_status, now)
            seen[entry.uid] = entry
        self.entries = seen
        self.last_relist = now

    def interval_for(self, entry: Entry) -> int:
        return self.policy.remediation.check_interval_for(entry.resource.spec.criticality.value)

    def first_check_at(self, resource: Assignment, raw_status: dict[str, Any], now: datetime) -> datetime | None:
        """When to check an Assignment this sweep has not seen before (None: at once).

        A new or changed one (its generation not yet observed) is checked at once. One already checked at its
        generation (a restarted controller meets the whole fleet so) is due at a point of its interval fixed
        by its uid, so a restart spreads the fleet's checks over one interval instead of checking all at once.
        """
        if raw_status.get("observedGeneration") != resource.metadata.generation:
            return None
        interval = self.policy.remediation.check_interval_for(resource.spec.criticality.value)
        digest = hashlib.sha256((resource.metadata.uid or resource.metadata.name).encode()).digest()
        return now + timedelta(seconds=interval * int.from_bytes(digest[:4]) / 2**32)

    def due(self, now: datetime) -> list[Entry]:
        """Entries due now, plus those of the same observation groups due within a tenth of their interval."""
        due = [e for e in self.entries.values() if e.next_check_at is None or e.next_check_at <= now]
        groups = {group_key(target_of(e.resource.spec)) for e in due}
        chosen = {id(e) for e in due}
        for entry in self.entries.values():
            if id(entry) in chosen or entry.next_check_at is None:
                continue
            slack = timedelta(seconds=self.interval_for(entry) / 10)
            if entry.next_check_at - now <= slack and group_key(target_of(entry.resource.spec)) in groups:
                due.append(entry)
        return due

    def conflicts(self) -> dict[str, str]:
        """uid -> another Assignment that wants a different state of the same target (none is remediated)."""
        return find_conflicts((uid, e.resource) for uid, e in self.entries.items())

    # ---- one cycle ---------------------------------------------------------------------------

    @timed("drift sweep", DRIFT_SWEEP_SECONDS)
    async def cycle(self, now: datetime) -> CycleReport:
        """Check what is due at `now`."""
        report = CycleReport()
        due = self.due(now)
        if not due:
            return report
        watched = [e for e in due if e.resource.spec.drift.mode is not DriftMode.OFF]
        observations, failed = await self._observe(watched, report)
        enforce = any(e.resource.spec.drift.mode is DriftMode.ENFORCE for e in watched)
        busy = tasks_in_flight(await self.cluster.list_deployment_tasks()) if enforce else {}
        named = {
            (e.resource.metadata.namespace or "", e.resource.status.remediation)
            for e in due
            if e.resource.status.remediation
        }
        records = await self.ledger.records((ns, n) for ns, n in named if n)
        conflicts = self.conflicts()
        resets: dict[str, datetime] = {}

        async def one(entry: Entry) -> None:
            if entry.uid in failed:
                entry.next_check_at = now + timedelta(seconds=self.tick)
                return
            try:
                result = await self._check(
                    entry, observations.get(entry.uid), records, busy, now, report, conflicts.get(entry.uid)
                )
            except Unavailable as error:
                report.errors += 1
                logger.warning("Drift check of Assignment %s failed: %s", entry.resource.metadata.name, error)
                entry.next_check_at = now + timedelta(seconds=self.tick)
                return
            entry.next_check_at = result.next_check_at
            if result.reset_at is not None and self._written_resets.get(entry.uid) != result.reset_at:
                resets[entry.uid] = result.reset_at

        await self._bounded(one(e) for e in due)
        if resets:
            await self.ledger.set_reset_points(resets)
            self._written_resets.update(resets)
        report.checked = len(due)
        return report

    async def _bounded(self, calls: Iterable[Awaitable[None]]) -> None:
        async def run(call: Awaitable[None]) -> None:
            async with self._limit:
                await call

        await asyncio.gather(*(run(c) for c in calls))

    async def _observe(self, entries: list[Entry], report: CycleReport) -> tuple[dict[str, Observation], set[str]]:
        groups: dict[GroupKey, list[Entry]] = defaultdict(list)
        for entry in entries:
            groups[group_key(target_of(entry.resource.spec))].append(entry)
        report.groups = len(groups)
        found: dict[str, Observation] = {}
        failed: set[str] = set()

        async def observe(key: GroupKey, members: list[Entry]) -> None:
            targets = [target_of(e.resource.spec) for e in members]
            try:
                observations = await self.planes.get(key[0]).observe(targets)
            except PlaneError as error:
                report.errors += 1
                failed.update(e.uid for e in members)
                logger.warning("Could not observe %s %s: %s", key[0], key[1], error)
                return
            by_target = {o.target.key: o for o in observations}
            for entry, target in zip(members, targets, strict=True):
                if target.key in by_target:
                    found[entry.uid] = by_target[target.key]

        await self._bounded(observe(k, m) for k, m in groups.items())
        return found, failed

    async def _current(self, entry: Entry, records: dict[tuple[str, str], RecordInfo]) -> OpenRemediation | None:
        name = entry.resource.status.remediation
        if not name:
            return None
        namespace = entry.resource.metadata.namespace or ""
        record = records.get((namespace, name))
        phase = RemediationPhase(record.phase) if record else RemediationPhase.PENDING
        current = OpenRemediation(name, phase)
        if record is None or current.awaiting_person:  # a person may have deleted it to ask for a retry
            exists = await self.cluster.get_remediation(namespace, name) is not None
            current = OpenRemediation(name, phase, exists)
        return current

    async def _check(
        self,
        entry: Entry,
        observation: Observation | None,
        records: dict[tuple[str, str], RecordInfo],
        busy: dict[str, str],
        now: datetime,
        report: CycleReport,
        conflict: str | None = None,
    ) -> CheckResult:
        asg = entry.resource
        spec = asg.spec
        interval = self.interval_for(entry)
        watched = spec.drift.mode is not DriftMode.OFF
        if watched and self.provenance is not None:
            bad = problem(spec, await self.provenance(spec))
            refused = refused_check(entry.raw_status, asg, bad, now, interval)
            if refused is not None:
                if refused.status:
                    await self._write(entry, refused, now, report)
                return refused
        assessment = (
            classify_drift(spec, observation, now, grace_seconds=self.policy.remediation.service_down_grace_seconds)
            if watched
            else None
        )
        current = await self._current(entry, records)
        change = busy.get(spec.app)

        def verdict(current: OpenRemediation | None, opened: str | None = None) -> CheckResult:
            return assess_drift_check(
                asg,
                entry.raw_status,
                assessment,
                now,
                interval_seconds=interval,
                current=current,
                change_in_progress=change,
                opened=opened,
                conflict=conflict,
            )

        result = verdict(current)
        if result.wants_remediation is not None:  # one open per Assignment: a person's may be open
            other = await self.ledger.open_for_assignment(asg.metadata.uid or "", ("", ""))
            if other is not None:
                result = verdict(OpenRemediation(other.name, RemediationPhase(other.phase)))
        if result.wants_remediation is not None:
            name = await open_remediation(self.cluster, self.ledger, asg, result.wants_remediation, now)
            report.opened += 1
            result = verdict(current, name)
        if assessment is not None and assessment.finding is not None:
            report.drifted.append(f"{asg.metadata.namespace}/{asg.metadata.name}")
        result = first_seen(cleared(result, entry.raw_status, asg.metadata.generation, now), entry.raw_status, asg)
        if result.status:
            await self._write(entry, result, now, report)
        return result

    async def _write(self, entry: Entry, result: CheckResult, now: datetime, report: CycleReport) -> None:
        asg = entry.resource
        meta = asg.metadata
        correlation = asg.correlation_id or asg.spec.correlation_id or meta.uid or meta.name
        ref = ObjectRef("Assignment", meta.namespace or "", meta.name, meta.uid)
        writer = CheckWriter(self.cluster, self.audit, ref, correlation, now)
        outcome = Outcome(status=result.status, events=result.events, audits=result.audits)
        if not await write_outcome(outcome, writer, correlation) or writer.written is None:  # deleted meanwhile
            self.entries.pop(entry.uid, None)
            return
        report.written += 1
        entry.raw_status = dict(writer.written.get("status") or {})
        entry.resource = entry.resource.model_copy(update={"status": Assignment.from_body(writer.written).status})

    # ---- the timer ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, clock: Callable[[], datetime] = utcnow) -> None:
        """Relist and check until `stop` is set; a failing cycle is logged and retried next tick."""
        tick = self.tick
        every = timedelta(seconds=relist_seconds(self.policy))
        logger.info("Drift checks run every %.1fs (relist every %ss)", tick, every.total_seconds())
        while not stop.is_set():
            now = clock()
            try:
                if self.last_relist is None or now - self.last_relist >= every:
                    await self.relist(now)
                report = await self.cycle(now)
                if report.checked:
                    logger.debug(
                        "Drift cycle checked %d in %d groups, wrote %d, opened %d",
                        report.checked,
                        report.groups,
                        report.written,
                        report.opened,
                    )
            except Unavailable as error:
                logger.warning("Drift cycle skipped: %s", error)
            except Exception:
                logger.exception("Drift cycle failed; retrying next tick")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=tick)
