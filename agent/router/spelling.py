"""Typo repair for the offline router: a word one edit away from a word of the domain becomes that word.

Run on normalized text before entities and intent, so "rollbak", "deplyo" and "rign 2" read as meant.
Only plain words the router does not already know are touched, never a known app or a name with digits,
hyphens or slashes; an edit is an insertion, deletion, substitution or swap of two neighbours after the
first letter (typos rarely hit the first letter; "bring" must not become "ring", nor "ask" "task").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_DOMAIN = """
deploy deployment deployments deployed rollout rollback roll back restart reboot revert cancel approve approval
approvals reject submit history health healthy status ring rings canary pilot global department lab drift fix
remediate breaker breakers circuit integration integrations failures failing failed pending running tasks task
rollouts version which devices targets release check system services service change request requests
"""
DOMAIN_WORDS = frozenset(_DOMAIN.split())
_TARGETS = tuple(sorted(w for w in DOMAIN_WORDS if len(w) >= 4))
_WORD = re.compile(r"(?<![\w/.-])[a-z]{3,}(?![\w/.-])")


def _one_edit(word: str, target: str) -> bool:
    """True if `target` is one insertion, deletion, substitution or neighbour swap away from `word`."""
    if word == target or abs(len(word) - len(target)) > 1 or word[0] != target[0]:
        return False
    if len(word) == len(target):
        diff = [i for i, (a, b) in enumerate(zip(word, target, strict=True)) if a != b]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and word[diff[0]] == target[diff[1]]
            and word[diff[1]] == target[diff[0]]
        )
    short, long = (word, target) if len(word) < len(target) else (target, word)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


@lru_cache(maxsize=8192)
def corrected(word: str, vocabulary: frozenset[str]) -> str:
    """The domain word `word` is a typo of, or `word` itself."""
    if word in vocabulary or word in DOMAIN_WORDS:
        return word
    for suffix in ("s", "es", "d", "ed", "ing", "ly"):
        stem = word.removesuffix(suffix)
        if stem != word and (stem in vocabulary or stem in DOMAIN_WORDS):
            return word
    for target in _TARGETS:
        if _one_edit(word, target):
            return target
    return word


def repair(text: str, vocabulary: frozenset[str], protected: Iterable[str] = ()) -> tuple[str, tuple[str, ...]]:
    """`text` with typos of domain words repaired, and a note per repair ("rollbak → rollback")."""
    keep = set(protected)
    notes: list[str] = []

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        if word in keep:
            return word
        better = corrected(word, vocabulary)
        if better != word:
            notes.append(f"read {word!r} as {better!r}")
        return better

    return _WORD.sub(fix, text), tuple(notes)
