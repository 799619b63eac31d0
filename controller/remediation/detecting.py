"""What one drift check means for one Assignment: its new status, Events, audit rows, and whether to
open a Remediation. Pure; the sweep (controller/remediation/sweeping.py) gathers the inputs.

Modes: `Off` is never observed (sync Unknown); `Warn` records drift and posts an Event; `Enforce`
also opens a Remediation unless one is open, one escalated and awaits a person, or a rollout of the
app is in flight. Status is a delta against what is stored, so an unchanged Assignment writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from controller.api.assignment import Assignment, DriftMode, DriftObservation, SyncState
from controller.api.identity import SYSTEM_USER
from controller.api.meta import Condition, ConditionStatus
from controller.api.remediation import FINAL_PHASES, RemediationPhase
from controller.core import conditions
from controller.core.outcome import AuditNote, EventNote
from controller.remediation.backoff import reset_point
from controller.remediation.classifying import Assessment, Finding, observed_status, target_of

_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)
SYNCED = "Synced"
READY = "Ready"
#: Phases after which the drift loop waits for a person before it opens another Remediation.
NEEDS_HUMAN = frozenset({RemediationPhase.ESCALATED, RemediationPhase.STALLED, RemediationPhase.FAILED})


@dataclass(frozen=True)
class OpenRemediation:
    """What the sweep knows about the Remediation named in `status.remediation`."""

    name: str
    phase: RemediationPhase
    exists: bool = True

    @property
    def open(self) -> bool:
        return self.exists and self.phase not in FINAL_PHASES

    @property
    def awaiting_person(self) -> bool:
        return self.exists and self.phase in NEEDS_HUMAN


@dataclass(frozen=True)
class CheckResult:
    status: dict[str, Any]
    next_check_at: datetime
    events: tuple[EventNote, ...] = ()
    audits: tuple[AuditNote, ...] = ()
    wants_remediation: Finding | None = None
    reset_at: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def stamp(moment: datetime) -> str:
    """A timestamp as the status models serialize it (RFC 3339, `Z` for UTC)."""
    text: str = _DATETIME.dump_python(moment, mode="json")
    return text


def sync_condition(sync: SyncState | None, reason: str, message: str) -> tuple[ConditionStatus, str, str]:
    status = {
        SyncState.SYNCED: ConditionStatus.TRUE,
        SyncState.DRIFTED: ConditionStatus.FALSE,
    }.get(sync or SyncState.UNKNOWN, ConditionStatus.UNKNOWN)
    return status, reason, message


def _conditions(asg: Assignment, now: datetime, status: ConditionStatus, reason: str, message: str) -> list[Any]:
    generation = asg.metadata.generation
    conds: list[Condition] = list(asg.status.conditions)
    for type_ in (SYNCED, READY):
        conds = conditions.set_condition(conds, conditions.make(type_, status, reason, message, generation, now))
    return [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conds]


def _enforce_note(
    asg: Assignment,
    finding: Finding,
    current: OpenRemediation | None,
    change: str | None,
    opened: str | None,
    conflict: str | None = None,
) -> tuple[str, bool]:
    """(message suffix, whether a Remediation should be opened) for Enforce mode."""
    if opened:
        return f"; opened Remediation {opened}", False
    if current is not None and current.open:
        return f"; Remediation {current.name} is {current.phase.value}", False
    if current is not None and current.awaiting_person:
        return f"; Remediation {current.name} is {current.phase.value} and awaits a person", False
    if change:
        return f"; DeploymentTask {change} is changing {asg.spec.app}, not remediated meanwhile", False
    if conflict:
        return f"; Assignment {conflict} wants another state of the same target, not remediated", False
    return "", True


def assess_drift_check(
    asg: Assignment,
    raw_status: dict[str, Any],
    assessment: Assessment | None,
    now: datetime,
    *,
    interval_seconds: float,
    current: OpenRemediation | None = None,
    change_in_progress: str | None = None,
    opened: str | None = None,
    conflict: str | None = None,
) -> CheckResult:
    """The outcome of checking `asg` at `now` (`assessment` is None in mode Off)."""
    st = asg.status
    mode = asg.spec.drift.mode
    next_check = now + timedelta(seconds=interval_seconds)
    events: list[EventNote] = []
    audits: list[AuditNote] = []
    wants: Finding | None = None
    keep = current.name if current is not None and (current.open or current.awaiting_person) else None
    desired: dict[str, Any]
    if mode is DriftMode.OFF or assessment is None:
        cond = sync_condition(SyncState.UNKNOWN, "DriftCheckOff", "Drift mode Off: not checked")
        desired = {"sync": SyncState.UNKNOWN.value, "drift": None, "syncedSince": None, "remediation": keep}
        reset_at = None
    elif assessment.finding is None:
        since = st.synced_since if st.sync is SyncState.SYNCED and st.synced_since else now
        ignored = "; ".join(f"{f.type.value} ignored ({f.detail})" for f in assessment.ignored)
        message = "In sync" + (f"; {ignored}" if ignored else "")
        cond = sync_condition(SyncState.SYNCED, "DriftIgnored" if ignored else "InSync", message)
        still_open = current.name if current is not None and current.open else None
        desired = {
            "sync": SyncState.SYNCED.value,
            "drift": None,
            "syncedSince": stamp(since),
            "remediation": still_open,
        }
        if st.sync is SyncState.DRIFTED:
            was = st.drift.type.value if st.drift else "drift"
            events.append(EventNote("DriftResolved", f"{was} is gone; {asg.spec.app} is in sync"))
            audits.append(AuditNote("DriftResolved", SYSTEM_USER, f"{was} is gone"))
        reset_at = reset_point(since, interval_seconds, now)
    else:
        finding = assessment.finding
        same = st.sync is SyncState.DRIFTED and st.drift is not None and st.drift.type is finding.type
        detected_at = st.drift.detected_at if same and st.drift and st.drift.detected_at else now
        drift = DriftObservation(
            type=finding.type,
            detail=finding.detail[:1024],
            detected_at=detected_at,
            security_relevant=finding.security_relevant,
        )
        message = f"{finding.type.value}: {finding.detail}"
        if mode is DriftMode.WARN:
            message += " (drift mode Warn: recorded, not remediated)"
        else:
            note, should_open = _enforce_note(asg, finding, current, change_in_progress, opened, conflict)
            message += note
            wants = finding if should_open else None
            keep = opened or keep
        if not same:
            events.append(EventNote("DriftDetected", message, "Warning"))
            audits.append(
                AuditNote(
                    "DriftDetected",
                    SYSTEM_USER,
                    message,
                    {
                        "driftType": finding.type.value,
                        "mode": mode.value,
                        "securityRelevant": finding.security_relevant,
                    },
                )
            )
        if opened:
            events.append(EventNote("RemediationOpened", f"Opened Remediation {opened} for {finding.type.value}"))
            audits.append(AuditNote("RemediationOpened", SYSTEM_USER, f"Remediation {opened}", {"remediation": opened}))
        cond = sync_condition(SyncState.DRIFTED, finding.type.value, message)
        desired = {
            "sync": SyncState.DRIFTED.value,
            "drift": drift.model_dump(mode="json", by_alias=True, exclude_none=True),
            "syncedSince": None,
            "remediation": keep,
        }
        reset_at = None
    desired["conditions"] = _conditions(asg, now, *cond)
    if assessment is not None and assessment.observation is not None:
        seen = observed_status(assessment.observation)
        desired["observed"] = seen.model_dump(mode="json", by_alias=True, exclude_none=True) if seen else None
    if assessment is not None and assessment.recheck_at is not None and assessment.recheck_at < next_check:
        next_check = assessment.recheck_at
    patch = conditions.delta(raw_status, desired)
    if patch:
        patch["lastCheckedAt"] = stamp(now)
    return CheckResult(
        status=patch,
        next_check_at=next_check,
        events=tuple(events),
        audits=tuple(audits),
        wants_remediation=wants,
        reset_at=reset_at,
    )


def first_seen(result: CheckResult, raw_status: dict[str, Any], asg: Assignment) -> CheckResult:
    """`result` with the Assignment's generation observed: the first check of a new or changed spec writes
    `observedGeneration` in its one status write, and audits the acceptance of a new Assignment."""
    generation = asg.metadata.generation
    seen = raw_status.get("observedGeneration")
    if seen == generation:
        return result
    accepted = (AuditNote("Accepted", SYSTEM_USER, "Assignment accepted"),) if seen is None else ()
    return replace(result, status={**result.status, "observedGeneration": generation}, audits=accepted + result.audits)


def desired_state(asg: Assignment) -> tuple[str, str | None, str | None]:
    """What an Assignment wants of its target: version, artifact, configuration hash."""
    spec = asg.spec
    return spec.version, spec.artifact, spec.config.sha256 if spec.config else None


def find_conflicts(assignments: Iterable[tuple[str, Assignment]]) -> dict[str, str]:
    """key -> `namespace/name` of another watched Assignment that wants a different state of the same target."""
    by_target: dict[tuple[str, str], list[Assignment]] = defaultdict(list)
    keys: dict[int, str] = {}
    for key, asg in assignments:
        if asg.spec.drift.mode is not DriftMode.OFF:
            target = target_of(asg.spec)
            by_target[(target.plane, target.key)].append(asg)
            keys[id(asg)] = key
    found: dict[str, str] = {}
    for group in by_target.values():
        for asg in group:
            other = next((o for o in group if desired_state(o) != desired_state(asg)), None)
            if other is not None:
                found[keys[id(asg)]] = f"{other.metadata.namespace}/{other.metadata.name}"
    return found
