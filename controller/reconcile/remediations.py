"""The Remediation reconcile: admission (a contradictory spec is Denied), then one pass of the
remediation state machine (controller/remediation/remediating.py) composed into an Outcome.

Without the remediation runtime (no PostgreSQL or no Kubernetes credentials) a Remediation is only
admitted and waits with Ready=Unknown, which is the honest state.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from controller.api.kinds import KindInfo
from controller.api.remediation import Remediation, RemediationPhase
from controller.core.outcome import Admitted, Outcome
from controller.reconcile.admission import admit, rejected
from controller.reconcile.deps import Deps
from controller.reconcile.firstvisit import reconcile_plain
from controller.remediation.remediating import run
from controller.remediation.stepping import compose


def denied_spec(info: KindInfo, body: dict[str, Any], problems: list[Any], now: datetime) -> Outcome:
    """InvalidSpec (e.g. an action that does not fit the drift type) is Denied; nothing is touched."""
    outcome = rejected(info, body, problems, now)
    current = body.get("status") or {}
    status = dict(outcome.status)
    status.pop("phase", None)
    if current.get("phase") != RemediationPhase.DENIED.value:
        message = "; ".join(str(p) for p in problems)
        status["phase"] = RemediationPhase.DENIED.value
        status["policy"] = {"allowed": False, "reason": message[:1024], "rule": "InvalidSpec"}
    return replace(outcome, status=status)


async def reconcile_remediation(info: KindInfo, body: dict[str, Any], deps: Deps, now: datetime) -> Outcome:
    runtime = deps.remediation
    admitted = admit(info, body)
    if not isinstance(admitted, Admitted):
        return denied_spec(info, body, admitted, now)
    if runtime is None:
        return reconcile_plain(info, body, now)
    resource = admitted.resource
    assert isinstance(resource, Remediation)
    step = await run(runtime.engine, resource, admitted.correlation_id, now)
    return compose(body, admitted, step, now)
