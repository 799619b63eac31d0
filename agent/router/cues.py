"""Word cues of each intent: hand-written patterns the classifier reads as features, weighed by the corpus.

A cue is evidence, not a verdict: "cue:failed_targets" fires on "broken targets" and the classifier
learns from the corpus how much it counts. For mutating intents `commanded` cues (the action asked for,
see agent.router.mood) are separate from mere mentions of the verb.
"""

from __future__ import annotations

import re

from agent.router.intents import Intent
from agent.router.mood import Verdict


def _cue(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


CUES: dict[Intent, re.Pattern[str]] = {
    Intent.CANCEL_TASK: _cue(
        r"\b(?:cancel\w*|abort\w*|halt|terminat\w*|call off|scrap|pull the plug)\b",
        r"\b(?:kill|stop\w*)\b.*\b(?:task|job|rollout|deploy\w*|release|rolling)\b",
    ),
    Intent.ROLLBACK: _cue(
        r"\broll(?:ing|ed)?[\s-]?back\b|\broll\b.*\bback\b|\brevert\w*|\bundo\b|\bdowngrad\w*",
        r"\bprevious version\b|\bgo back to\b|\bback out\b|\blast (?:good|known[- ]good|stable)\b",
    ),
    Intent.RESTART: _cue(
        r"\b(?:restart\w*|reboot\w*|bounc\w*|recycl\w*|relaunch\w*)\b",
        r"\bbring\b.*\bback (?:up|online)\b|\bstart\b.*\bagain\b|\bkick\b(?! off)",
    ),
    Intent.FIX_DRIFT: _cue(
        r"\bdrift\b",
        r"\b(?:remediat\w*|re-?sync\w*|reconcil\w*|converg\w*|heal)\b",
        r"\bback in(?:to)? (?:sync|line)\b|\bdesired state\b",
    ),
    Intent.DECIDE: _cue(
        r"\b(?:approve|reject\w*|deny|declin\w*|veto\w*|sign off on|lgtm|green[\s-]?light|accept)\b",
        r"\bturn down\b|\bapproving\b",
        r"(?:<change>|\bchange\b|\bcr\b).*\b(?:looks?|is|seems?|sounds?)\s+(?:good|fine|ok|okay|safe|great)\b",
        r"\bgood to go\b|\bfine by me\b|\bno objections?\b",
        r"\b(?:fine|happy|ok|okay|comfortable) with\b.*(?:<change>|\bchange\b|\bcr\b)",
    ),
    Intent.PENDING_APPROVALS: _cue(
        r"\bpending\b|\bwaiting\b|\bawaiting\b|\bqueue\b|\bto (?:approve|review)\b|\bsign-?off\b",
        r"\b(?:open|outstanding|unapproved) (?:change|cr)",
        r"\bneeds? (?:my |an? )?(?:approval|review|sign-?off)",
        r"\bapproved\b|\bneeds to approve\b",
    ),
    Intent.SUBMIT_CAB: _cue(
        r"\bsubmit\w*\b",
        r"\b(?:request|ask for|seek|get|need)\b.*\bapproval\b",
        r"\bfor (?:cab )?(?:approval|review)\b",
        r"\b(?:change request|cr|change board)\b",
        r"\bto the (?:cab|approvers)\b",
    ),
    Intent.BREAKERS: _cue(r"\bcirc\w* ?-?breakers?\b|\bbreakers?\b|\btripped\b|\bopen circuits?\b|\bhalf-open\b"),
    Intent.INTEGRATIONS: _cue(
        r"\bintegrations?\b|\bconnectors?\b|\bexternal\b|\bthird[- ]party\b|\bupstream\b",
        r"\bsyncs?\b.*\b(?:fail|error)|\b(?:servicenow|intune|jamf|itsm|sccm)\b",
    ),
    Intent.HISTORY: _cue(
        r"\bhistory\b|\bhistor\w*\b|\bchangelog\b|\brelease log\b|\btimeline\b|\baudit\b",
        r"\b(?:past|previous|recent\w*|earlier|prior|last(?: \d+)?)\s+"
        r"(?:deployments|releases|rollouts)",
        r"\b(?:did|have|has|was|were|when was|who)\s+(?:\S+\s+){0,3}"
        r"(?:deploy|ship|releas|roll(?!out)|submitt|cancel)",
        r"\b(?:yesterday|last week|last night|recently|before|already)\b",
    ),
    Intent.DEPLOY: _cue(
        r"\b(?:deploy|ship|release|roll out|push|promote|upgrade|update)\b",
        r"<version>.*\bready (?:for|to go to)\s+<ring>",
    ),
    Intent.RUNNING_TASKS: _cue(
        r"\b(?:running|active|ongoing|in[- ]flight|in progress|current|queued|underway|background)\s+"
        r"(?:tasks?|jobs?|operations?|rollouts?|deployments?)",
        r"\b(?:tasks?|jobs?|operations?|rollouts?|deployments?)\b.*\b(?:running|active|in progress|in[- ]flight|"
        r"queued|underway)\b",
        r"\bwhat(?:'s| is) (?:going on|in progress|happening|running)\b|\bdoing right now\b|\bat the moment\b",
        r"\brolling out right now\b|\bbeing deployed\b|\b(?:anything|something) (?:going on|happening|in progress)\b",
    ),
    Intent.HEALTH: _cue(
        r"^(?!.*<(?:app|task)>).*(?:\bhealth\w*\b)",
        r"\bsystems?\b|\bplatform\b|\beverything\b|\boperational\b|\bcomponents?\b",
        r"\b(?:database|redis|postgres|control plane|ringpilot)\b|\bare we up\b|\boverall\b",
        r"^(?!.*<(?:app|task|target|change)>)\W*(?:\w+\s+){0,3}(?:status|state|overview|summary)\b",
    ),
    Intent.FAILURES: _cue(
        r"\b(?:fail\w*|broken|unhealthy|not ready|crash\w*|down|erroring|errors?|degraded|drifted|out of sync)\b",
        r"\b(?:devices?|targets?|hosts?|machines?|nodes?|endpoints?|servers?)\b",
    ),
    Intent.RING_DEPLOYMENTS: _cue(
        r"<ring>.*\b(?:deploy\w*|running|installed|live|contents?|apps?|have|workloads?|"
        r"services?)\b",
        r"\b(?:deploy\w*|running|installed|live|contents?|what'?s on|apps?|workloads?|"
        r"services?|versions?)\b.*<ring>",
        r"\bin a ring\b",
        r"^\s*(?:show|list|display|view|inspect)(?:\s+(?:me|us|the))*\s+<ring>",
        r"\bwhat(?:'s| is) (?:in|on)\s+<ring>",
    ),
    Intent.APP_STATUS: _cue(
        r"(?:\bstatus|\bstate|\bprogress|\bhow(?:'s| is| far)|\bnews|\bgoing|\bis)\b"
        r".*<(?:app|task)>",
        r"<(?:app|task)>.*\b(?:status|state|progress|doing|looking|going|healthy|ok|up|at)\b",
        r"\bcheck(?:ing)?(?: up| in)? on\b.*<(?:app|task)>",
    ),
}


def cue_features(masked: str, verdicts: dict[Intent, Verdict]) -> list[str]:
    """`cue:<intent>` for every cue in `masked`, and `act:<intent>` for every action the message commands."""
    out = [f"cue:{intent.value}" for intent, cue in CUES.items() if cue.search(masked)]
    return out + [f"act:{intent.value}" for intent, verdict in verdicts.items() if verdict.commanded]
