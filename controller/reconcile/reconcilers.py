"""Which reconcile function serves which kind.

Each kind's engine registers its async reconcile here; kinds without one use the plain
first-visit reconcile. `controller.operator.handlers` looks the function up per event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from controller.api.kinds import KINDS, KindInfo
from controller.core.outcome import Outcome
from controller.reconcile.assignments import reconcile_assignment
from controller.reconcile.changerequests import reconcile_change_request
from controller.reconcile.conversations import reconcile_conversation
from controller.reconcile.deploymenttasks import reconcile_deployment_task
from controller.reconcile.deps import Deps
from controller.reconcile.firstvisit import reconcile_plain
from controller.reconcile.remediations import reconcile_remediation

Reconciler = Callable[[KindInfo, dict[str, Any], Deps, datetime], Awaitable[Outcome]]


async def _plain(info: KindInfo, body: dict[str, Any], deps: Deps, now: datetime) -> Outcome:
    return reconcile_plain(info, body, now)


RECONCILERS: dict[str, Reconciler] = {info.kind: _plain for info in KINDS}
RECONCILERS["Conversation"] = reconcile_conversation
RECONCILERS["Assignment"] = reconcile_assignment
RECONCILERS["Remediation"] = reconcile_remediation
RECONCILERS["DeploymentTask"] = reconcile_deployment_task
RECONCILERS["ChangeRequest"] = reconcile_change_request


def reconciler_for(kind: str) -> Reconciler:
    return RECONCILERS[kind]
