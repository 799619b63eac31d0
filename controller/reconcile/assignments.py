"""The Assignment reconcile: admission, the first conditions, and a notice to the drift sweep so a new
or changed Assignment is checked at once.

The drift checks themselves run in the sweep (controller/remediation/sweeping.py), batched per
namespace, and the sweep is the one writer of `Synced` and `Ready`: this reconcile leaves both alone
and does no I/O. Without the remediation runtime there is no sweep, and the reconcile says so with
`Ready=Unknown`.

With the sweep running, Kopf reconciles only the Assignments the sweep cannot take
(`wants_reconcile`): a spec that fails admission (InvalidSpec) or one without a correlation label.
Every other new or changed Assignment (all those a rollout writes) gets its first status, with
`observedGeneration`, from the sweep's first check: one status write, and Kopf stores no state on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from controller.api.identity import SYSTEM_USER
from controller.api.kinds import ASSIGNMENT, KindInfo
from controller.core import conditions
from controller.core.conditions import accepted_conditions
from controller.core.outcome import Admitted, AuditNote, Outcome
from controller.reconcile.admission import admit, rejected
from controller.reconcile.deps import Deps
from controller.reconcile.firstvisit import reconcile_plain


async def reconcile_assignment(info: KindInfo, body: dict[str, Any], deps: Deps, now: datetime) -> Outcome:
    runtime = deps.remediation
    if runtime is None:
        return reconcile_plain(info, body, now)
    admitted = admit(info, body)
    if not isinstance(admitted, Admitted):
        return rejected(info, body, admitted, now)
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    conds = accepted_conditions(body, generation, now)
    desired = {
        "observedGeneration": generation,
        "conditions": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conds],
    }
    current = body.get("status") or {}
    first = current.get("observedGeneration") is None
    runtime.sweeper.notice(body)
    return Outcome(
        status=conditions.delta(current, desired),
        labels=admitted.new_labels,
        # an audit row, no Event: a rollout creates Assignments by the dozen, and one Event each was a write each
        audits=(AuditNote("Accepted", SYSTEM_USER, f"{info.kind} accepted"),) if first else (),
    )


def wants_reconcile(body: Mapping[str, Any], sweeping: bool) -> bool:
    """Whether Kopf's reconcile should take this Assignment now (see the module docstring)."""
    metadata = body.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return False
    unobserved = (body.get("status") or {}).get("observedGeneration") != metadata.get("generation")
    if not sweeping:
        return unobserved
    admitted = admit(ASSIGNMENT, dict(body))
    if not isinstance(admitted, Admitted):
        return unobserved  # the sweep skips it: InvalidSpec is written here, once per generation
    return bool(admitted.new_labels)  # the sweep may have observed it first; the label is still ours to add
