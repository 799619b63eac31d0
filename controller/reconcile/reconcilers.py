"""Which reconcile function serves which kind.

Every kind in `controller.api.kinds.KINDS` has its engine's async reconcile here (a kind missing
from the table fails at import). `controller.operator.handlers` looks the function up per event.
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
from controller.reconcile.remediations import reconcile_remediation

Reconciler = Callable[[KindInfo, dict[str, Any], Deps, datetime], Awaitable[Outcome]]


RECONCILERS: dict[str, Reconciler] = {
    "Conversation": reconcile_conversation,
    "Assignment": reconcile_assignment,
    "Remediation": reconcile_remediation,
    "DeploymentTask": reconcile_deployment_task,
    "ChangeRequest": reconcile_change_request,
}
_unserved = {info.kind for info in KINDS} - set(RECONCILERS)
if _unserved:
    raise ImportError(f"No reconcile function for kind(s) {sorted(_unserved)}")


def reconciler_for(kind: str) -> Reconciler:
    return RECONCILERS[kind]
