"""The intents of the offline router: what each one does, which ones change something, and their action verbs.

`ACTIONS` holds, for every mutating intent, the verbs (matched at the start of a clause) and nouns that
can command it; `agent.router.mood.commanded` decides whether a message does. `READ_INSTEAD` says which
read intent answers a question about an action ("should I roll back web?" → the status of web).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from agent.router.entities import Entities


class Intent(StrEnum):
    CANCEL_TASK = "cancel_task"
    ROLLBACK = "rollback"
    RESTART = "restart_service"
    FIX_DRIFT = "fix_drift"
    DECIDE = "decide_change"
    PENDING_APPROVALS = "pending_approvals"
    SUBMIT_CAB = "submit_cab"
    BREAKERS = "circuit_breakers"
    INTEGRATIONS = "integration_failures"
    HISTORY = "deployment_history"
    DEPLOY = "deploy"
    RUNNING_TASKS = "running_tasks"
    HEALTH = "system_health"
    FAILURES = "failed_targets"
    RING_DEPLOYMENTS = "ring_deployments"
    APP_STATUS = "app_status"


#: The class of messages that are none of the intents (greetings, jokes): answered with the capabilities.
NONE = "none"

MUTATING = frozenset(
    {
        Intent.DEPLOY,
        Intent.DECIDE,
        Intent.SUBMIT_CAB,
        Intent.ROLLBACK,
        Intent.RESTART,
        Intent.FIX_DRIFT,
        Intent.CANCEL_TASK,
    }
)

#: What the user would be asked to choose, one short phrase per intent.
DESCRIPTIONS: dict[str, str] = {
    Intent.CANCEL_TASK: "cancel a running task",
    Intent.ROLLBACK: "roll an app back",
    Intent.RESTART: "restart a service",
    Intent.FIX_DRIFT: "fix drift",
    Intent.DECIDE: "approve or reject a change",
    Intent.PENDING_APPROVALS: "see pending approvals",
    Intent.SUBMIT_CAB: "submit a change for CAB approval",
    Intent.BREAKERS: "see circuit breakers",
    Intent.INTEGRATIONS: "see integration failures",
    Intent.HISTORY: "see deployment history",
    Intent.DEPLOY: "deploy a version",
    Intent.RUNNING_TASKS: "see running tasks",
    Intent.HEALTH: "check system health",
    Intent.FAILURES: "see failed targets",
    Intent.RING_DEPLOYMENTS: "see what is deployed in a ring",
    Intent.APP_STATUS: "see the status of an app or task",
}


@dataclass(frozen=True)
class Action:
    """How a mutating intent is commanded: verbs that open a clause, nouns after a verb of doing."""

    verbs: re.Pattern[str]
    nouns: re.Pattern[str] | None = None


def _words(pattern: str) -> re.Pattern[str]:
    return re.compile(r"(?:" + pattern + r")\b")


_SOME = r"(?:\S+\s+){1,4}"
ACTIONS: dict[Intent, Action] = {
    Intent.DEPLOY: Action(
        _words(
            r"deploy(?:ing|ed)?|ship(?:ping|ped)?|releas(?:e|ing|ed)|roll(?:ing|ed)?\s?out|push(?:ing|ed)?|"
            r"promot(?:e|ing|ed)|upgrad(?:e|ing|ed)|updat(?:e|ing|ed)|install(?:ing|ed)?|publish(?:ing|ed)?|"
            r"launch(?:ing|ed)?|put|roll\s+" + _SOME + r"out"
        ),
        re.compile(r"\b(?:rollout|deployment|release|upgrade)\b"),
    ),
    Intent.ROLLBACK: Action(
        _words(
            r"roll(?:ing|ed)?[\s-]?back|rollback|roll\s+" + _SOME + r"back|revert(?:ing|ed)?|undo(?:ing|ne)?|"
            r"downgrad(?:e|ing|ed)|go back|back out|restor(?:e|ing|ed)"
        ),
        re.compile(r"\b(?:rollback|roll-back|revert)\b"),
    ),
    Intent.RESTART: Action(
        _words(
            r"restart(?:ing|ed)?|reboot(?:ing|ed)?|bounc(?:e|ing|ed)|recycl(?:e|ing|ed)|relaunch(?:ing|ed)?|"
            r"respawn|kick(?! off)|bring\s+" + _SOME + r"back (?:up|online)|start\s+" + _SOME + r"again"
        ),
        re.compile(r"\b(?:restart|reboot|bounce|kick)\b"),
    ),
    Intent.FIX_DRIFT: Action(
        _words(
            r"fix(?:ing|ed)?|remediat(?:e|ing|ed)|repair(?:ing|ed)?|resolv(?:e|ing|ed)|correct(?:ing|ed)?|"
            r"reconcil(?:e|ing|ed)|heal|re-?sync(?:ing|ed)?|sync|converg(?:e|ing|ed)|clean up|sort out|straighten|"
            r"(?:bring|get)\s+" + _SOME + r"back in(?:to)? (?:sync|line)"
        ),
        re.compile(r"\b(?:remediation|fix|resync)\b"),
    ),
    Intent.DECIDE: Action(
        _words(
            r"approv(?:e|ing|ed)|reject(?:ing|ed)?|deny|denied|declin(?:e|ing|ed)|veto(?:ing|ed)?|"
            r"sign(?:ing)? off|lgtm|green[\s-]?light|accept(?:ing|ed)?|refus(?:e|ing|ed)|turn down|ok the|okay the"
        ),
    ),
    Intent.SUBMIT_CAB: Action(
        _words(r"submit(?:ting|ted)?|request(?:ing)?|raise|file|open|create|ask (?:for|the)|send|put|get cab|seek"),
        re.compile(r"\b(?:approval|sign-?off|review|change request|cr)\b"),
    ),
    Intent.CANCEL_TASK: Action(
        _words(
            r"cancel(?:l?ing|l?ed)?|abort(?:ing|ed)?|halt|terminat(?:e|ing|ed)|kill|stop(?:ping|ped)?|call off|"
            r"scrap|pull the plug"
        ),
        re.compile(r"\bcancellation\b"),
    ),
}

_PAST = re.compile(
    r"\b(?:did|has|have|had|was|were|when was|who)\b.*\b(?:deploy|ship|release|roll|revert|submit|cancel|upgrad)\w*"
    r"|\b(?:already|before|last (?:night|week|time))\b"
)


#: "is web deployed to canary?" asks what a ring runs.
_IN_RING = re.compile(r"\b(?:deployed|installed|live|running)\s+(?:to|in|on|into|at)\b")


def read_instead(intent: Intent, entities: Entities, text: str) -> Intent:
    """The read intent that answers a question about `intent` (see docs/evals.md for the table)."""
    if intent in (Intent.DECIDE,):
        return Intent.PENDING_APPROVALS
    if intent is Intent.FIX_DRIFT:
        return Intent.FAILURES
    if intent is Intent.CANCEL_TASK and entities.task is None and entities.app is None:
        return Intent.RUNNING_TASKS
    if entities.task is not None:
        return Intent.APP_STATUS
    if intent is not Intent.RESTART and _PAST.search(text):
        return Intent.HISTORY
    if intent is Intent.DEPLOY and entities.ring is not None and _IN_RING.search(text):
        return Intent.RING_DEPLOYMENTS
    if entities.app is not None:
        return Intent.APP_STATUS
    if intent is Intent.RESTART:
        return Intent.FAILURES
    if intent is Intent.SUBMIT_CAB:
        return Intent.PENDING_APPROVALS
    if intent is Intent.DEPLOY and entities.ring is not None:
        return Intent.RING_DEPLOYMENTS
    return Intent.RUNNING_TASKS if intent is Intent.CANCEL_TASK else Intent.HISTORY
