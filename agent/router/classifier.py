"""The intent classifier: multinomial naive Bayes over `features`, with weights shipped in weights.json.

The weights are built from the train and dev splits of the corpus by `agent.router.training` and are
stored sparsely: per class a prior and the log-probability of an unseen feature, and per feature only
the classes that saw it, as the gain over unseen. Scoring is a sum of those gains; `explain` lists the
features that weighed most for a class.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

WEIGHTS = "weights.json"


@dataclass(frozen=True)
class Model:
    """Weights of the naive Bayes classifier (see the module docstring)."""

    classes: tuple[str, ...]
    priors: tuple[float, ...]
    unseen: tuple[float, ...]
    gains: dict[str, dict[int, float]]
    vocabulary: frozenset[str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Model:
        gains = {f: {int(k): float(v) for k, v in row.items()} for f, row in data["gains"].items()}
        return cls(
            tuple(data["classes"]), tuple(data["priors"]), tuple(data["unseen"]), gains, frozenset(data["vocabulary"])
        )

    def probabilities(self, feats: list[str]) -> list[tuple[str, float]]:
        """Every class with its posterior probability, most likely first."""
        scores = list(self.priors)
        known = 0
        for feat in feats:
            row = self.gains.get(feat)
            if row is None:
                continue
            known += 1
            for index, gain in row.items():
                scores[index] += gain
        scores = [s + known * u for s, u in zip(scores, self.unseen, strict=True)]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        ranked = sorted(zip(self.classes, (e / total for e in exps), strict=True), key=lambda p: -p[1])
        return ranked

    def explain(self, feats: list[str], name: str, limit: int = 3) -> list[str]:
        """The features that most favour class `name`."""
        index = self.classes.index(name)
        weighed = {f: self.gains[f].get(index, 0.0) for f in set(feats) if f in self.gains}
        return [f for f, _ in sorted(weighed.items(), key=lambda p: (-p[1], p[0]))[:limit] if weighed[f] > 0]


@cache
def shipped() -> Model:
    """The model shipped with the package."""
    text = resources.files("agent.router").joinpath(WEIGHTS).read_text(encoding="utf-8")
    return Model.from_json(json.loads(text))
