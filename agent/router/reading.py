"""How the router reads a message before deciding anything: normalize, repair typos, extract entities.

Shared by routing and by the weight build, so the classifier is trained on exactly what it later sees.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agent.router.entities import Entities, extract_explained, normalize
from agent.router.features import features
from agent.router.intents import ACTIONS, Intent
from agent.router.mood import Mood, Verdict, commanded, mood_of
from agent.router.spelling import repair


@dataclass(frozen=True)
class Reading:
    """A message as the router read it: text, entities, mood, which actions it commands, features, and why."""

    text: str
    entities: Entities
    mood: Mood
    verdicts: dict[Intent, Verdict]
    features: list[str]
    why: tuple[str, ...]


def read(text: str, known_apps: Iterable[str], vocabulary: frozenset[str]) -> Reading:
    """Read one message (see the module docstring)."""
    apps = list(known_apps)
    repaired, notes = repair(normalize(text), vocabulary, apps)
    entities, found = extract_explained(repaired, apps)
    mood = mood_of(repaired)
    verdicts = {intent: commanded(repaired, a.verbs, a.nouns) for intent, a in ACTIONS.items()}
    feats = features(repaired, entities, mood, verdicts)
    return Reading(repaired, entities, mood, verdicts, feats, notes + found)
