"""Which objects still have work ahead of them: only those get the controller's resync timer (or daemon).

An idle fleet costs nothing: a finished DeploymentTask, a decided ChangeRequest, a closed Remediation or
an answered Conversation has no timer (Kopf stops an object's timer when its filter stops matching, and
starts it again when an edit makes the object live again). Assignments have none at all: the drift sweep
re-checks them in batches (controller/remediation/sweeping.py). A restarted controller resumes only what is
in flight or not yet reconciled (`wants_resume`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.api.changerequest import ChangePhase
from controller.api.conversation import REPLYING
from controller.api.deploymenttask import FINAL_PHASES as TASK_FINAL_PHASES
from controller.api.remediation import FINAL_PHASES as REMEDIATION_FINAL_PHASES

#: ChangeRequest phases that still wait for something (decisions, expiry, the task's end).
_OPEN_CHANGE_PHASES = {None, "", ChangePhase.PENDING.value, ChangePhase.APPROVED.value}
_FINAL_TASK_PHASES = {phase.value for phase in TASK_FINAL_PHASES}
_FINAL_REMEDIATION_PHASES = {phase.value for phase in REMEDIATION_FINAL_PHASES}


def _status(body: Mapping[str, Any]) -> Mapping[str, Any]:
    return body.get("status") or {}


def _conversation_in_flight(body: Mapping[str, Any]) -> bool:
    status = _status(body)
    messages = (body.get("spec") or {}).get("messages") or []
    if int(status.get("answered") or 0) < len(messages) or status.get("pending"):
        return True
    return any(c.get("type") == REPLYING and c.get("status") == "True" for c in status.get("conditions") or [])


def in_flight(kind: str, body: Mapping[str, Any]) -> bool:
    """True while an object of `kind` may still change on its own (so a periodic reconcile can matter)."""
    if kind == "Assignment":
        return False
    metadata = body.get("metadata") or {}
    status = _status(body)
    if metadata.get("deletionTimestamp"):
        return False
    if status.get("observedGeneration") != metadata.get("generation"):
        return True  # not yet reconciled at this generation (a lost event is recovered by the timer)
    phase = status.get("phase")
    if kind == "DeploymentTask":
        return phase not in _FINAL_TASK_PHASES
    if kind == "Remediation":
        return phase not in _FINAL_REMEDIATION_PHASES
    if kind == "ChangeRequest":
        return phase in _OPEN_CHANGE_PHASES
    if kind == "Conversation":
        return _conversation_in_flight(body)
    return True


def wants_resume(kind: str, body: Mapping[str, Any]) -> bool:
    """True when a restarted controller should reconcile the object again: it is in flight, or it was not
    reconciled at its generation. A settled object (every Assignment of an idle fleet, a finished task) is
    left alone, so a restart costs Kopf's own pass over the objects and no reconcile of each."""
    if in_flight(kind, body):
        return True
    metadata = body.get("metadata") or {}
    return not metadata.get("deletionTimestamp") and _status(body).get("observedGeneration") != metadata.get(
        "generation"
    )


def wants_wake(body: Mapping[str, Any]) -> bool:
    """True when a DeploymentTask's loop should run now for what the watch shows: its spec changed (a step's
    report wakes it through PostgreSQL instead, operator/driving.py `listen_for_reports`)."""
    metadata = body.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return False
    return _status(body).get("observedGeneration") != metadata.get("generation")
