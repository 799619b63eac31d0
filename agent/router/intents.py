"""The supported intents of the seed, how each is recognised, and which tool answers it.

`classify` tries each intent's patterns in a fixed order (the more specific and the more dangerous
first: cancelling, rolling back and restarting before reading) and returns the first that matches.
Some intents also need an entity to be present (a ring for "deployments in ring N") or absent
(an app turns "is it healthy?" from system health into app status).
"""

from __future__ import annotations

import re
from collections.abc import Callable
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


def _any(*patterns: str) -> Callable[[str, Entities], bool]:
    compiled = [re.compile(p) for p in patterns]
    return lambda text, _: any(p.search(text) for p in compiled)


_QUESTION = re.compile(r"^\s*(what|which|show|list|any|are there|is there|do we|how many|give me|tell me)\b")

_DECIDE_IMPERATIVE = re.compile(
    r"^\W*(?:please\s+|ok(?:ay)?,?\s+|so\s+|now\s+|then\s+|i\s+|we\s+|go ahead and\s+|let'?s\s+)?"
    r"(approve|reject|deny|decline|veto|sign off)\b"
)
_DECIDE_VERB = re.compile(r"\b(approve|reject|deny|decline|veto|sign off on|lgtm|greenlight|green-light)\b")
_SOME_RING = re.compile(r"\b(?:deploy\w*|running|installed|workloads?)\b.*\b(?:which|a|each|per|by) ring\b")
_DEPLOY_VERB = re.compile(
    r"\b(deploy|ship|release|roll out|push|promote|upgrade)\b(?!\s+(?:history|notes|log))"
    r"|\bupdate\s+(?!on\b|me\b)[a-z][a-z0-9-]*\s+to\b"
)


def _decide(text: str, entities: Entities) -> bool:
    if _DECIDE_IMPERATIVE.search(text):
        return True
    return bool(_DECIDE_VERB.search(text)) and not _QUESTION.search(text)


def _deploy(text: str, entities: Entities) -> bool:
    return bool(_DEPLOY_VERB.search(text)) and not re.search(r"^\s*(what|which|show|list|when)\b", text)


def _health(text: str, entities: Entities) -> bool:
    if entities.app or entities.task:
        return False
    return _any(
        r"\bhealth\b",
        r"\bhealthy\b",
        r"\bhealth ?check\b",
        r"\bsystem status\b",
        r"\bplatform status\b",
        r"\b(?:is|are) (?:everything|the system|ringpilot|all systems|the platform|all services|all components|"
        r"services|components|we) (?:ok|okay|up|fine|healthy|working|running|alive|good|operational)\b",
        r"\bstatus of (?:the )?(?:system|platform|ringpilot|everything|components|services)\b",
        r"\ball (?:systems|services|components) (?:up|ok|go)\b",
        r"\boverall status\b",
    )(text, entities)


def _running(text: str, entities: Entities) -> bool:
    if entities.ring is not None:
        return False
    return _any(
        r"\b(?:async|asynchronous|background|running|active|ongoing|in[- ]flight|in progress|current|open|queued)\s+"
        r"(?:async\s+)?(?:tasks?|jobs?|operations?|rollouts?|deployments?|work|remediations?)\b",
        r"\b(?:tasks?|jobs?|operations?|rollouts?)\b.*"
        r"\b(?:running|active|in progress|in[- ]flight|going on|queued|underway)\b",
        r"\bwhat(?:'s| is) (?:going on|in progress|happening|underway)\b",
        r"\bwhat(?:'s| is) running\b",
        r"\bwhat(?:'s| is) (?:ringpilot )?(?:doing|working on)\b",
    )(text, entities)


def _failures(text: str, entities: Entities) -> bool:
    problem = re.search(
        r"\b(fail(?:ed|ing|ures?|s)?|broken|unhealthy|not ready|crash\w*|down|erroring|errors?|degraded|drifted|"
        r"out of sync|problems?)\b",
        text,
    )
    subject = re.search(
        r"\b(devices?|targets?|hosts?|machines?|nodes?|workloads?|instances?|endpoints?|servers?|pods?|where|which|"
        r"what|any|list|show)\b",
        text,
    )
    return bool(problem and subject)


def _ring_deployments(text: str, entities: Entities) -> bool:
    if entities.ring is None:
        return bool(_SOME_RING.search(text))
    return _any(
        r"\bdeploy\w*\b",
        r"\brunning\b",
        r"\bruns?\b",
        r"\binstalled\b",
        r"\bworkloads?\b",
        r"\bapps?\b",
        r"\bapplications?\b",
        r"\bservices?\b",
        r"\bversions?\b",
        r"\bwhat(?:'s| is)\b",
        r"\bshow\b",
        r"\blist\b",
        r"\bin (?:the )?(?:ring|lab|canary|pilot|department|global)\b",
        r"\bcontents?\b",
    )(text, entities)


def _app_status(text: str, entities: Entities) -> bool:
    if entities.app is None and entities.task is None and not entities.ambiguous_apps:
        return bool(re.search(r"\bstatus\b|\bhow(?:'s| is) (?:it|my task|the task)\b", text))
    return _any(
        r"\bstatus\b",
        r"\bstate\b",
        r"\bhow(?:'s| is| are)\b",
        r"\bversions?\b",
        r"\bdoing\b",
        r"\bprogress\b",
        r"\bwhere is\b",
        r"\bhealth\w*\b",
        r"\bok(?:ay)?\b",
        r"\bup\b",
        r"\brunning\b",
        r"\bdetails?\b",
        r"\bcheck\b",
        r"\blook\b",
        r"\bfine\b",
        r"\bdone\b",
        r"\?$",
    )(text, entities)


@dataclass(frozen=True)
class IntentRule:
    intent: Intent
    matches: Callable[[str, Entities], bool]


RULES: tuple[IntentRule, ...] = (
    IntentRule(
        Intent.CANCEL_TASK,
        _any(
            r"\b(cancel|abort|halt|terminate)\b",
            r"\bkill\b.*\b(task|job|rollout|deploy\w*|release)\b",
            r"\bstop\b.*\b(task|job|rollout|deploy\w*|release|rolling)\b",
        ),
    ),
    IntentRule(
        Intent.ROLLBACK,
        _any(
            r"\broll(?:ing|ed)?[\s-]?back\b",
            r"\broll\b.*\bback\b",
            r"\brevert\b",
            r"\bundo\b",
            r"\bprevious version\b",
            r"\bgo back to\b",
            r"\bdowngrade\b",
            r"\brestore\b.*\bversion\b",
            r"\blast (?:good|known[- ]good|stable) version\b",
        ),
    ),
    IntentRule(
        Intent.RESTART,
        _any(
            r"\b(restart|reboot|bounce|recycle)\b",
            r"\bbring\b.*\bback (?:up|online)\b",
            r"\bstart\b.*\bagain\b",
            r"\bkick\b.*\b(service|pod|workload|app)\b",
        ),
    ),
    IntentRule(
        Intent.FIX_DRIFT,
        _any(
            r"\b(fix|remediate|repair|resolve|correct|reconcile|heal|sort out|address|clear|clean up)\b.*\bdrift",
            r"\bdrift\b.*\b(fix|remediat\w*|repair|resolve|correct|heal)\b",
            r"\bremediat(?:e|ion)\b",
            r"\bre-?sync\b",
            r"\bback in(?:to)? (?:sync|line)\b",
            r"\bconverge\b",
        ),
    ),
    IntentRule(Intent.DECIDE, lambda text, entities: bool(_DECIDE_IMPERATIVE.search(text))),
    IntentRule(
        Intent.PENDING_APPROVALS,
        _any(
            r"\bpending\b.*\b(approvals?|changes?|requests?|reviews?|crs?|decisions?)\b",
            r"\b(approvals?|changes?|change requests?|crs?)\b.*\bpending\b",
            r"\b(waiting|awaiting)\b.*\b(approval|review|decision|cab|sign-?off)\b",
            r"\bneeds? (?:my |an? |cab )?(?:approval|review|sign-?off|decision)\b",
            r"\bapproval queue\b",
            r"\b(?:open|outstanding|unapproved) (?:change requests|changes|crs|approvals|reviews)\b",
            r"\bwhat (?:do|should|can|must) i (?:approve|review)\b",
            r"\b(?:anything|something|what) to approve\b",
            r"\bcab queue\b",
        ),
    ),
    IntentRule(Intent.DECIDE, _decide),
    IntentRule(
        Intent.SUBMIT_CAB,
        _any(
            r"\bsubmit\b",
            r"\b(?:request|ask for|seek|get)\b.*\b(?:cab )?approval\b",
            r"\bsend\b.*\b(?:cab|approval|review|approvers)\b",
            r"\bfor (?:cab )?(?:approval|review|sign-?off)\b",
            r"\b(?:open|raise|file|create) (?:a )?(?:change request|cr|cab request)\b",
            r"\bto (?:the )?cab\b",
        ),
    ),
    IntentRule(Intent.BREAKERS, _any(r"circuit[\s-]?breakers?", r"\bbreakers?\b", r"\btripped\b")),
    IntentRule(
        Intent.INTEGRATIONS,
        _any(
            r"\bintegrations?\b",
            r"\bconnectors?\b",
            r"\bexternal (?:systems?|services?|dependencies)\b",
            r"\bthird[- ]party\b",
            r"\bsyncs? (?:fail|error)",
            r"\bupstream (?:failures|errors|systems)\b",
        ),
    ),
    IntentRule(
        Intent.HISTORY,
        _any(
            r"\bhistory\b",
            r"\b(?:past|previous|recent|earlier|prior|last(?: \d+)?)\s+(?:deployments|releases|rollouts|changes)\b",
            r"\bwhat (?:did|have) (?:we|you|i|they|people) (?:deploy|ship|release|roll)",
            r"\bwhat (?:was|got|has been) (?:deployed|shipped|released)\b",
            r"\bchangelog\b",
            r"\brelease log\b",
            r"\bdeployed (?:recently|before|last|so far)\b",
            r"\bwhen was .* (?:deployed|released|shipped)\b",
            r"\btimeline\b",
            r"\baudit (?:log|trail)\b",
        ),
    ),
    IntentRule(Intent.DEPLOY, _deploy),
    IntentRule(Intent.RUNNING_TASKS, _running),
    IntentRule(Intent.HEALTH, _health),
    IntentRule(Intent.FAILURES, _failures),
    IntentRule(Intent.RING_DEPLOYMENTS, _ring_deployments),
    IntentRule(Intent.APP_STATUS, _app_status),
)


def classify(text: str, entities: Entities) -> Intent | None:
    """The first intent whose rule matches normalized `text`, or None."""
    for rule in RULES:
        if rule.matches(text, entities):
            return rule.intent
    return None
