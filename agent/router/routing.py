"""The offline router's decision: which tool to call with which arguments, what to ask, or what it can do.

`route` reads the message (typos repaired, entities extracted by rules), ranks the intents with the
shipped classifier, and applies the safety rule of `agent.router.mood`: a mutating intent only when its
action is commanded; a question about an action gets the read intent that answers it. When the best
intent is unsure or a close second exists, it asks which one was meant; when an entity is missing it
asks for it. Either question is remembered as an `awaiting` dict (kept in the assistant message's meta)
so the next turn's answer completes the request. Without the tool's permission it does not ask: it calls
the tool at once so the registry's permission check, in code, gives the refusal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from agent.router.classifier import Model, shipped
from agent.router.entities import Entities
from agent.router.intents import DESCRIPTIONS, MUTATING, NONE, Intent, read_instead
from agent.router.questions import CAPABILITIES, answer_of, choice_of, missing_of, question
from agent.router.reading import Reading, read
from agent.router.specs import MAX_RING_INTENTS, SPECS

__all__ = ["CAPABILITIES", "Decision", "route"]

#: Below this probability the best intent is a guess: the router asks instead.
MIN_CONFIDENCE = 0.5
#: A second intent this close to the first is asked about.
MIN_MARGIN = 0.2
#: An unsure message this likely to be none of the intents gets the list of capabilities.
NONE_SHARE = 0.2
_INTENTS: dict[str, Intent] = {i.value: i for i in Intent}
_DROP = re.compile(r"^\W*(never ?mind|forget (?:it|that)|cancel that|stop|nothing|skip it|no thanks?)\W*$")


@dataclass(frozen=True)
class Decision:
    """What the router decided: call `tool` with `arguments`, or answer `text` (and maybe await an answer).

    `why` lists the rules and features behind the decision; `entities` are those it acted on.
    """

    intent: Intent | None = None
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    awaiting: dict[str, Any] | None = None
    why: tuple[str, ...] = ()
    confidence: float = 0.0
    entities: Entities = field(default_factory=Entities)
    clarifying: bool = False


def _act(
    intent: Intent, entities: Entities, text: str, apps: list[str], denied: set[str], why: list[str], confidence: float
) -> Decision:
    if intent in MAX_RING_INTENTS and entities.ring is None and entities.all_rings:
        entities = replace(entities, ring=4)
    if (
        intent is Intent.ROLLBACK
        and entities.version
        and not re.search(r"\bto\s+(?:version\s+)?v?" + re.escape(entities.version), text)
    ):
        why = [*why, f"{entities.version} is the version rolled back from, not to"]
        entities = replace(entities, version=None)
    spec = SPECS[intent]
    missing = missing_of(spec.required, entities)
    if missing is not None and spec.tool not in denied:
        if missing == "app_or_task" and entities.ambiguous_apps:
            missing = "app"
        return Decision(
            intent=intent,
            text=question(missing, entities, apps),
            awaiting={"intent": intent.value, "entities": entities.to_dict(), "missing": missing, "text": text},
            why=(*why, f"asked for the missing {missing}"),
            confidence=confidence,
            entities=entities,
        )
    return Decision(
        intent=intent,
        tool=spec.tool,
        arguments=spec.build(entities, text),
        why=tuple(why),
        confidence=confidence,
        entities=entities,
    )


def _clarify(choices: list[Intent], reading: Reading, why: list[str], confidence: float) -> Decision:
    options = " or ".join(f"{i + 1}) {DESCRIPTIONS[c]}" for i, c in enumerate(choices))
    subject = reading.entities.app or reading.entities.target or reading.entities.change or reading.entities.task
    about = f" about {subject}" if subject else ""
    return Decision(
        text=f"I am not sure what you want{about}: {options}? Reply with the number, or say it another way.",
        awaiting={
            "intent": None,
            "choices": [c.value for c in choices],
            "missing": "intent",
            "entities": reading.entities.to_dict(),
            "text": reading.text,
        },
        why=(*why, "asked which intent was meant"),
        confidence=confidence,
        entities=reading.entities,
        clarifying=True,
    )


def _allowed(intent: Intent | None, reading: Reading, why: list[str]) -> tuple[Intent | None, str]:
    """`intent` checked by the safety rule: (intent, "ok"), (read intent, "question"), or (None, why not)."""
    if intent is None or intent not in MUTATING:
        return intent, "ok"
    verdict = reading.verdicts[intent]
    why.append(f"{intent.value}: {verdict.reason}")
    if verdict.commanded:
        return intent, "ok"
    if verdict.reason == "no action verb" and reading.mood == "statement" and f"cue:{intent.value}" in reading.features:
        why.append(f"{intent.value} is hinted at in a statement, not asked for")
        return None, "mentioned"
    if reading.mood == "question" or verdict.reason.startswith("a question"):
        instead = read_instead(intent, reading.entities, reading.text)
        why.append(f"a question about {intent.value} goes to {instead.value}")
        return instead, "question"
    return None, "mentioned" if verdict.reason.startswith("the action is mentioned") else "absent"


def _choose(model: Model, reading: Reading, apps: list[str], denied: set[str]) -> Decision:
    ranked: list[tuple[Intent | None, float]] = [(_INTENTS.get(c), p) for c, p in model.probabilities(reading.features)]
    why = list(reading.why)
    top, p1 = ranked[0]
    why.append(
        f"classifier: {top.value if top else NONE} p={p1:.2f} "
        f"({', '.join(model.explain(reading.features, top.value if top else NONE))})"
    )
    chosen, verdict = _allowed(top, reading, why)
    if verdict in ("mentioned", "absent"):
        other = next((i for i, _ in ranked[1:4] if i in MUTATING and _allowed(i, reading, [])[1] == "ok"), None)
        if other is not None:
            why.append(f"{other.value} is asked for, not {top.value if top else NONE}")
            chosen, verdict = other, "ok"
            ranked = [(i, p) for i, p in ranked if i is other] + [(i, p) for i, p in ranked if i is not other]
    if verdict == "mentioned" and top is not None:
        return _clarify([top, read_instead(top, reading.entities, reading.text)], reading, why, p1)
    if verdict == "question":
        return (
            _act(chosen, reading.entities, reading.text, apps, denied, why, p1)
            if chosen
            else Decision(text=CAPABILITIES, why=tuple(why))
        )
    if verdict == "absent":  # no action asked for: the best of the other intents, re-weighed without the actions
        rest = [(i, p) for i, p in ranked if i is None or i not in MUTATING or _allowed(i, reading, [])[1] == "ok"]
        total = sum(p for _, p in rest) or 1.0
        ranked = [(i, p / total) for i, p in rest]
        (chosen, p1) = ranked[0]
        why.append(f"no action asked for: {chosen.value if chosen else NONE} p={p1:.2f}")
    else:
        ranked = [(i, p) for i, p in ranked if i is None or i not in MUTATING or i is chosen]
    runner, p2 = ranked[1] if len(ranked) > 1 else (None, 0.0)
    if chosen is None:
        return Decision(text=CAPABILITIES, why=(*why, f"none of the intents (p={p1:.2f})"), confidence=p1)
    nothing = dict(ranked).get(None, 0.0)
    cued = {f.split(":", 1)[1] for f in reading.features if f.startswith(("cue:", "act:"))}
    if runner is None and nothing >= NONE_SHARE and chosen.value not in cued and not reading.entities.to_dict():
        return Decision(
            text=CAPABILITIES, why=(*why, f"no cue, nothing named, and none is next (p={nothing:.2f})"), confidence=p1
        )
    if p1 >= MIN_CONFIDENCE and p1 - p2 >= MIN_MARGIN:
        return _act(chosen, reading.entities, reading.text, apps, denied, why, p1)
    if p1 < MIN_CONFIDENCE and chosen.value not in cued and (runner is None or runner.value not in cued):
        return Decision(
            text=CAPABILITIES, why=(*why, f"unsure and no cue: at best {chosen.value} (p={p1:.2f})"), confidence=p1
        )
    if runner is None or (p1 < MIN_CONFIDENCE and nothing >= NONE_SHARE):
        if p1 >= MIN_CONFIDENCE and (chosen.value in cued or nothing < NONE_SHARE):
            return _act(chosen, reading.entities, reading.text, apps, denied, why, p1)
        return Decision(text=CAPABILITIES, why=(*why, f"unsure: at best {chosen.value} (p={p1:.2f})"), confidence=p1)
    return _clarify([chosen, runner], reading, why, p1)


def _resume(
    awaiting: dict[str, Any], model: Model, reading: Reading, apps: list[str], denied: set[str]
) -> Decision | None:
    """The awaited request completed by this answer, or None when the message is a new request."""
    known = Entities.from_dict(awaiting.get("entities") or {})
    newer = Entities.from_dict({k: v for k, v in reading.entities.to_dict().items() if k != "decision"})
    text = str(awaiting.get("text") or reading.text)
    why = [*reading.why, "an answer to the question asked"]
    ranked = model.probabilities(reading.features)
    top, p1 = ranked[0]
    if awaiting.get("missing") == "intent":
        choices = [Intent(c) for c in awaiting.get("choices") or []]
        picked = choice_of(reading.text, choices, ranked)
        if picked is None:
            return None
        why.append(f"picked {picked.value}")
        return _act(picked, known.merged(newer), text, apps, denied, why, p1)
    previous = Intent(str(awaiting["intent"]))
    words = reading.text.split()
    fresh = top not in (previous.value, NONE) and (
        (p1 >= MIN_CONFIDENCE and len(words) >= 3) or reading.mood == "question"
    )
    if fresh:
        return None
    merged = known.merged(newer).merged(answer_of(str(awaiting.get("missing")), reading.text, apps))
    if merged.app is not None:
        merged = replace(merged, ambiguous_apps=())
    return _act(previous, merged, text, apps, denied, why, p1)


def route(
    text: str,
    known_apps: Iterable[str] = (),
    awaiting: dict[str, Any] | None = None,
    denied_tools: Iterable[str] = (),
    model: Model | None = None,
) -> Decision:
    """Decide what to do with one user message (see the module docstring); `model` replaces the shipped one."""
    model = model or shipped()
    apps = sorted(set(known_apps))
    denied = set(denied_tools)
    reading = read(text, apps, model.vocabulary)
    if awaiting is not None:
        if _DROP.match(reading.text):
            return Decision(text="OK, I dropped that request.", why=("the user dropped the request",))
        resumed = _resume(awaiting, model, reading, apps, denied)
        if resumed is not None:
            return resumed
    return _choose(model, reading, apps, denied)
