"""The remediation policy (domain.md §6.3): may Ringpilot fix this drift now, and if not, why.

Pure: `decide` takes the facts gathered by the Remediation controller and returns one verdict
naming the rule that decided. Autonomous action only for a known, non-security drift in rings
0..autonomousMaxRing on a non-privileged app, within attempts, windows, backoff and rate limits.
A person's request goes through the same rules after a permission check of their role.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from controller.api.assignment import DriftType
from controller.api.identity import SYSTEM_USER
from controller.api.policy import Permission, Policy, RingName, Role, WindowPurpose, may
from controller.api.remediation import FixAction
from controller.api.semantics import FIX_FOR_DRIFT
from controller.core.windows import window_verdict
from controller.remediation.backoff import AttemptRecord, flapping, next_attempt_at
from controller.remediation.classifying import Finding

if TYPE_CHECKING:
    from controller.remediation.ledger import RecordInfo


class Verdict(StrEnum):
    ACT = "Act"
    WAIT = "Wait"
    ESCALATE = "Escalate"
    STALL = "Stall"
    DENY = "Deny"
    PLAN = "Plan"
    DONE = "Done"


@dataclass(frozen=True)
class RateCounts:
    """Remediations acting now in the ring and on the app, and attempts started in the last hour."""

    in_ring: int = 0
    for_app: int = 0
    last_hour: int = 0


@dataclass(frozen=True)
class Facts:
    """Everything the policy looks at for one Remediation at one moment."""

    app: str
    ring: int
    finding: Finding | None
    now: datetime
    requester: str
    role: Role | None = None  # None: the drift loop itself, or a requester already screened
    dry_run: bool = False
    requested_action: FixAction | None = None
    expected_drift: DriftType | None = None
    first_pass: bool = True
    attempts: Sequence[AttemptRecord] = field(default_factory=tuple)
    history: Sequence[AttemptRecord] = field(default_factory=tuple)
    interval_seconds: float = 3600.0
    change_in_progress: str | None = None
    rates: RateCounts = field(default_factory=RateCounts)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    rule: str
    reason: str
    drift_type: DriftType | None = None
    action: FixAction | None = None
    window: str | None = None
    next_at: datetime | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict in (Verdict.ACT, Verdict.DONE)


def _ring_label(ring: int) -> str:
    return f"ring {ring} ({list(RingName)[ring].value})"


def requester_refusal(requester: str, role: Role | None) -> Decision | None:
    """The one permission rule: a person must hold a role that may remediate (None: the drift loop)."""
    if role is not None and not may(role, Permission.REMEDIATE):
        return Decision(
            Verdict.DENY,
            "RequesterLacksPermission",
            f"{requester} is {role.value}; remediation needs the operator or admin role",
        )
    return None


def screen_requester(
    requester: str, loop_record: RecordInfo | None, remediation_uid: str, policy: Policy
) -> tuple[Decision | None, Role | None]:
    """Who asks: (a denial or None, the requester's role; None for the drift loop).

    `system:ringpilot` is reserved for Remediations the drift loop noted in the ledger before it created
    them; anyone else needs a role that may remediate (`requester_refusal`).
    """
    if requester == SYSTEM_USER:
        forged = loop_record is None or not loop_record.opened_by_loop or loop_record.uid not in (None, remediation_uid)
        if forged:
            return Decision(
                Verdict.DENY,
                "ReservedRequester",
                f"requestedBy {SYSTEM_USER} is reserved for Remediations the drift loop opens; name yourself",
            ), None
        return None, None
    role = policy.role_for(requester)
    return requester_refusal(requester, role), role


def _gate(facts: Facts, policy: Policy) -> Decision | None:
    """Who asks, and whether there is a drift this Remediation may act on at all."""
    refusal = requester_refusal(facts.requester, facts.role)
    if refusal is not None:
        return refusal
    finding = facts.finding
    if finding is None:
        what = facts.expected_drift.value if facts.expected_drift else "drift"
        return Decision(Verdict.DONE, "NoDrift", f"no {what} observed; nothing to do", facts.expected_drift)
    if facts.expected_drift is not None and finding.type is not facts.expected_drift:
        if facts.first_pass:
            return Decision(
                Verdict.DENY,
                "DriftMismatch",
                f"spec.driftType is {facts.expected_drift.value} but {finding.type.value} is observed "
                f"({finding.detail})",
                finding.type,
            )
        return Decision(
            Verdict.ESCALATE,
            "DriftChanged",
            f"{facts.expected_drift.value} became {finding.type.value} ({finding.detail})",
            finding.type,
        )
    return None


def _escalations(facts: Facts, policy: Policy, finding: Finding) -> Decision | None:
    limits = policy.remediation
    kind = finding.type
    if finding.security_relevant:
        return Decision(Verdict.ESCALATE, "SecurityRelevantDrift", f"security-relevant drift: {finding.detail}", kind)
    action = FIX_FOR_DRIFT.get(kind)
    if action is None:
        return Decision(
            Verdict.ESCALATE,
            "UnknownDrift",
            f"drift of unknown type is never fixed by guessing: {finding.detail}",
            kind,
        )
    if facts.requested_action is not None and facts.requested_action is not action:
        return Decision(
            Verdict.DENY,
            "ActionDoesNotFitDrift",
            f"{facts.requested_action.value} does not fix {kind.value} drift (use {action.value})",
            kind,
        )
    if facts.ring > limits.autonomous_max_ring:
        return Decision(
            Verdict.ESCALATE,
            "ProductionRing",
            f"{_ring_label(facts.ring)} is beyond autonomousMaxRing {limits.autonomous_max_ring}; a person must review",
            kind,
            action,
        )
    if facts.app in policy.risk.privileged_apps:
        return Decision(
            Verdict.ESCALATE,
            "PrivilegedApp",
            f"{facts.app} is a privileged app; a person must review",
            kind,
            action,
        )
    flaps = flapping(facts.history, kind, facts.now, limits, facts.interval_seconds)
    if flaps is not None:
        return Decision(
            Verdict.STALL,
            "Flapping",
            f"{kind.value} came back {flaps} times within {limits.flap_window_intervals} check intervals "
            "of a "
            "verified fix; something is fighting the fix",
            kind,
            action,
        )
    if len(facts.attempts) >= limits.max_attempts:
        return Decision(
            Verdict.ESCALATE,
            "MaxAttempts",
            f"{kind.value} persisted after {len(facts.attempts)} attempts (maxAttempts {limits.max_attempts})",
            kind,
            action,
        )
    return None


def _waits(facts: Facts, policy: Policy, kind: DriftType, action: FixAction) -> Decision | None:
    limits = policy.remediation
    window = window_verdict(policy.windows, facts.ring, WindowPurpose.REMEDIATE, facts.now)
    if not window.open:
        rule = "DenyWindow" if window.reason.startswith("deny") else "OutsideAllowWindow"
        return Decision(Verdict.WAIT, rule, window.reason, kind, action, window.window, window.until)
    if facts.change_in_progress:
        return Decision(
            Verdict.WAIT,
            "ChangeInProgress",
            f"DeploymentTask {facts.change_in_progress} is changing {facts.app}; one change at a time",
            kind,
            action,
        )
    due = next_attempt_at(facts.attempts, limits)
    if due is not None and due > facts.now:
        return Decision(
            Verdict.WAIT,
            "Backoff",
            f"attempt {len(facts.attempts) + 1} waits until {due.isoformat()}",
            kind,
            action,
            next_at=due,
        )
    rates = facts.rates
    for count, limit, what in (
        (rates.in_ring, limits.max_concurrent_per_ring, f"in {_ring_label(facts.ring)}"),
        (rates.for_app, limits.max_concurrent_per_app, f"on {facts.app}"),
    ):
        if count >= limit:
            return Decision(
                Verdict.WAIT,
                "RateLimited",
                f"{count} remediations are acting {what} (limit {limit})",
                kind,
                action,
            )
    if rates.last_hour >= limits.max_per_hour:
        return Decision(
            Verdict.WAIT,
            "RateLimited",
            f"{rates.last_hour} remediations started in the last hour (maxPerHour {limits.max_per_hour})",
            kind,
            action,
        )
    return None


def decide(facts: Facts, policy: Policy) -> Decision:
    """The verdict for `facts` under `policy`; a dry run turns any verdict but Deny into Plan."""
    decision = _gate(facts, policy)
    if decision is None:
        assert facts.finding is not None
        decision = _escalations(facts, policy, facts.finding)
    if decision is None:
        assert facts.finding is not None
        kind = facts.finding.type
        action = FIX_FOR_DRIFT[kind]
        decision = _waits(facts, policy, kind, action) or Decision(
            Verdict.ACT,
            "Autonomous",
            f"{kind.value} in {_ring_label(facts.ring)} on {facts.app}: low risk, within policy; {action.value}",
            kind,
            action,
        )
    if facts.dry_run and decision.verdict is not Verdict.DENY:
        return replace(decision, verdict=Verdict.PLAN, reason=f"{_planned(decision)}")
    return decision


def _planned(decision: Decision) -> str:
    what = {
        Verdict.ACT: f"would {decision.action.value if decision.action else 'act'}",
        Verdict.WAIT: "would wait",
        Verdict.ESCALATE: "would escalate to a person",
        Verdict.STALL: "would stop (Stalled) and escalate",
        Verdict.DONE: "would do nothing",
    }.get(decision.verdict, "would do nothing")
    return f"Dry run: {what} ({decision.rule}): {decision.reason}"
