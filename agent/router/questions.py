"""What the router asks and how it reads the answer: a missing entity, or which of two intents was meant.

`question` words the ask for a missing entity; `answer_of` reads a bare answer ("2", "payments",
"the canary one"); `choice_of` reads the answer to a clarifying question ("1", "the rollback", "restart it").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agent.router.entities import RING_LABELS, STOPWORDS, Entities, ring_of
from agent.router.intents import ACTIONS, MUTATING, Intent
from agent.router.mood import commanded

CAPABILITIES = """I can help with these (a few example phrasings):
- Deployments: "show me deployments in ring 2", "what's the status of web?", "which devices have deployment failures?"
- Health: "check system health", "what circuit breakers are open?", "are there any integration failures?"
- Remediation: "fix the drift on web-ring-0", "restart the failed service", "roll back web to the previous version"
- CAB: "submit web 1.4.2 for approval", "show me pending approvals",
  "approve payments-2-0-0-cab only up to ring 1 with at least 99% success"
- Tasks: "what async tasks are running?", "cancel the failing task", "show deployment history"
- Deploy: "deploy web 1.4.2 to ring 1"
Anything that changes something is proposed first and done only after you reply yes."""

_BARE_RING = re.compile(r"^\W*(?:up to |to |into |ring |rings? )*([0-4])\W*$")
_BARE_NAME = re.compile(r"^\W*(?:the |app |application )*([a-z][a-z0-9-]{0,62})(?: app| one| please)?\W*$")
_ORDINALS = (
    re.compile(r"^\W*(?:1|one|the first(?: one)?|first(?: one)?|the former|former)\b"),
    re.compile(r"^\W*(?:2|two|the second(?: one)?|second(?: one)?|the latter|latter|the other(?: one)?)\b"),
)


def missing_of(required: tuple[str, ...], entities: Entities) -> str | None:
    """The first entity of `required` that `entities` lacks."""
    for need in required:
        if need == "app_or_task":
            if entities.app is None and entities.task is None:
                return "app_or_task"
        elif need == "target_or_app":
            if entities.target is None and entities.app is None:
                return "target_or_app"
        elif getattr(entities, need) is None:
            return need
    return None


def question(missing: str, entities: Entities, known_apps: Iterable[str]) -> str:
    """The question that asks for `missing`."""
    apps = ", ".join(sorted(entities.ambiguous_apps) or sorted(known_apps))
    examples = f" (e.g. {apps})" if apps else ""
    if missing == "app":
        if entities.ambiguous_apps:
            return f"Which app do you mean: {apps}?"
        return f"Which app?{examples}"
    if missing == "version":
        return f"Which version of {entities.app}? (e.g. 1.4.2)" if entities.app else "Which version? (e.g. 1.4.2)"
    if missing == "ring":
        names = ", ".join(f"{n} {label}" for n, label in enumerate(RING_LABELS))
        return f"Which ring? ({names})"
    if missing == "app_or_task":
        return f"Which app (or task) do you want the status of?{examples}"
    return "Which target? Name an assignment (e.g. web-ring-0), a workload (e.g. ring-0-lab/web), or an app and a ring."


def answer_of(missing: str, text: str, known_apps: Iterable[str]) -> Entities:
    """Entities from a bare answer to a question about `missing` ("2", "payments")."""
    if missing == "ring":
        bare = _BARE_RING.match(text)
        if bare:
            return Entities(ring=int(bare.group(1)))
        return Entities(ring=ring_of(text))
    if missing in ("app", "app_or_task", "target_or_app"):
        bare = _BARE_NAME.match(text)
        if bare and bare.group(1) not in STOPWORDS:
            name = bare.group(1)
            known = set(known_apps)
            if missing == "target_or_app" and name not in known and "-" in name:
                return Entities(target=name)
            if missing == "app_or_task" and name not in known and re.search(r"-\d", name):
                return Entities(task=name)
            return Entities(app=name)
    return Entities()


def choice_of(text: str, choices: list[Intent], ranked: list[tuple[str, float]]) -> Intent | None:
    """Which of `choices` the answer picks: by number, by commanding an action, or by the classifier."""
    for index, ordinal in enumerate(_ORDINALS):
        if index < len(choices) and ordinal.match(text):
            return choices[index]
    for choice in choices:
        if choice in MUTATING and commanded(text, ACTIONS[choice].verbs, ACTIONS[choice].nouns).commanded:
            return choice
    reads = [c for c in choices if c not in MUTATING]
    scores = dict(ranked)
    best = max(reads, key=lambda c: scores.get(c.value, 0.0), default=None)
    if best is not None and scores.get(best.value, 0.0) >= 0.3:
        return best
    return None
