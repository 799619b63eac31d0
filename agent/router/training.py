"""Builds the classifier's weights from the corpus: the train and dev splits only, never the test split.

`build` reads `train.yaml` and `dev.yaml` of a corpus folder, reads each text as the router does, and
counts features per intent; `main` writes the result to agent/router/weights.json. The build is
deterministic: rebuilding from the same splits reproduces the shipped file byte for byte.
Usage: .venv/bin/python -m agent.router.training [--corpus tests/agent/corpus] [--check]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

from agent.router.classifier import WEIGHTS
from agent.router.reading import read

SPLITS = ("train.yaml", "dev.yaml")
#: The apps the cluster knows while the corpus is read (as in tests/agent/corpus/README.md).
CORPUS_APPS = ("payments", "web")
#: Laplace smoothing of the feature counts.
ALPHA = 3.0
DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "tests" / "agent" / "corpus"
OUTPUT = Path(__file__).resolve().parent / WEIGHTS


def labelled(corpus: Path, splits: tuple[str, ...] = SPLITS) -> list[tuple[str, str]]:
    """(text, intent) of every single-turn case of the train and dev splits, "clarify" cases left out."""
    if "test.yaml" in splits:
        raise ValueError("the test split is never used to build the router")
    rows: list[tuple[str, str]] = []
    for name in splits:
        with (corpus / name).open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
        rows += [(str(c["text"]), str(c["intent"])) for c in data["cases"] if c["intent"] != "clarify"]
    return rows


def build(corpus: Path = DEFAULT_CORPUS, alpha: float = ALPHA, splits: tuple[str, ...] = SPLITS) -> dict[str, Any]:
    """The weights (see agent.router.classifier) from the corpus at `corpus` (train only when tuning)."""
    rows = labelled(corpus, splits)
    seen = Counter(w for text, _ in rows for w in set(re.findall(r"[a-z]+", text.lower())))
    vocabulary = frozenset(w for w, n in seen.items() if n >= 2)  # a typo is rarely made twice
    classes = sorted({intent for _, intent in rows})
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    per_class = Counter(intent for _, intent in rows)
    for text, intent in rows:
        counts[intent].update(read(text, CORPUS_APPS, vocabulary).features)
    features = sorted({f for c in counts.values() for f in c})
    size = len(features)
    priors = [round(math.log(per_class[c] / len(rows)), 6) for c in classes]
    unseen = [round(math.log(alpha / (sum(counts[c].values()) + alpha * size)), 6) for c in classes]
    gains: dict[str, dict[str, float]] = {}
    for feat in features:
        gains[feat] = {
            str(i): round(math.log((counts[c][feat] + alpha) / alpha), 6)
            for i, c in enumerate(classes)
            if counts[c][feat]
        }
    return {
        "alpha": alpha,
        "classes": classes,
        "priors": priors,
        "unseen": unseen,
        "gains": gains,
        "vocabulary": sorted(vocabulary),
    }


def dumps(weights: dict[str, Any]) -> str:
    return json.dumps(weights, sort_keys=True, indent=0, ensure_ascii=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--check", action="store_true", help="fail if the shipped weights differ from a rebuild")
    args = parser.parse_args(argv)
    text = dumps(build(args.corpus))
    if args.check:
        return 0 if OUTPUT.read_text(encoding="utf-8") == text else 1
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
