"""The features the intent classifier reads: words, word pairs and letter groups of a masked message.

Entities are masked first ("deploy web 1.4.2 to canary" → "deploy <app> <version> to <ring>"), so the
classifier learns how a request is phrased, not which app or version it names, and a name the cluster
does not know yet reads like any other. The mood of the message is a feature too.
"""

from __future__ import annotations

import re

from agent.router.cues import cue_features
from agent.router.entities import ALL_RINGS, RING_PATTERN, Entities
from agent.router.intents import Intent
from agent.router.mood import Mood, Verdict

_RING = re.compile(RING_PATTERN)
_RATE = re.compile(r"\d{1,3}(?:\.\d+)?\s*(?:%|percent)|\b0\.\d+\b")
CUE_WEIGHT = 5
CHARS = 4
_TOKEN = re.compile(r"<\w+>|[a-z]+(?:'[a-z]+)?|\?")


def masked(text: str, entities: Entities) -> str:
    """`text` (normalized) with each entity it names replaced by a placeholder such as <app>."""
    for value, slot in (
        (entities.target, "<target>"),
        (entities.change, "<change>"),
        (entities.task, "<task>"),
        (entities.version, "<version>"),
    ):
        if value:
            text = re.sub(r"(?<![\w.-])(?:v|version\s+)?" + re.escape(value) + r"(?![\w-])", f" {slot} ", text)
    for app in (entities.app, *entities.ambiguous_apps):
        if app:
            text = re.sub(r"(?<![\w<-])" + re.escape(app) + r"(?![\w>-])", " <app> ", text)
    text = _RATE.sub(" <rate> ", text)
    text = ALL_RINGS.sub(" <ring> ", text)
    return _RING.sub(" <ring> ", text)


def features(text: str, entities: Entities, mood: Mood, verdicts: dict[Intent, Verdict]) -> list[str]:
    """The features of a normalized message: mood, cues, words, word pairs, and 4-letter groups of longer words."""
    hidden = masked(text, entities)
    words = _TOKEN.findall(hidden)
    out = [f"mood:{mood}", *cue_features(hidden, verdicts)]
    out += [f"w:{w}" for w in words]
    out += [f"b:{a} {b}" for a, b in zip(["^", *words], [*words, "$"], strict=True)]
    for word in words:
        if len(word) > CHARS and word[0] != "<":
            padded = f" {word} "
            out += [f"c:{padded[i : i + CHARS]}" for i in range(len(padded) - CHARS + 1)]
    return _binary(out)


def _binary(feats: list[str]) -> list[str]:
    """Each feature once (binarized naive Bayes reads short texts better), cues and actions `CUE_WEIGHT` times."""
    seen = sorted(set(feats))
    return seen + [f for f in seen if f.startswith(("cue:", "act:"))] * (CUE_WEIGHT - 1)
