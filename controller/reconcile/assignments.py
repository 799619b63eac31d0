"""The Assignment reconcile: admission, the Ready condition its drift status implies, and a notice to
the drift sweep so a new or changed Assignment is checked at once.

The drift checks themselves run in the sweep (controller/remediation/sweeping.py), batched per
namespace; this reconcile does no I/O, so its timer stays cheap however many Assignments exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controller.api.kinds import KindInfo
from controller.core import conditions
from controller.core.conditions import READY
from controller.core.outcome import Outcome
from controller.reconcile.deps import Deps
from controller.reconcile.firstvisit import first_visit
from controller.remediation.detecting import ready_for


async def reconcile_assignment(info: KindInfo, body: dict[str, Any], deps: Deps, now: datetime) -> Outcome:
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    status, reason, message = ready_for(body.get("status") or {})
    ready = conditions.make(READY, status, reason, message, generation, now)
    admitted, outcome = first_visit(info, body, now, ready=ready)
    runtime = deps.remediation
    if admitted is not None and runtime is not None:
        runtime.sweeper.notice(body)
    return outcome
