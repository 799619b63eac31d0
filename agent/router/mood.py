"""Whether a message asks a question or requests an action: the rule that keeps questions away from actions.

A mutating intent is chosen only when one of its action verbs is *commanded*: the verb opens its clause
(an imperative, after fillers such as "ok", "please", "emergency:"), or follows an explicit request
("can you", "could you please", "I want to", "let's", "go ahead and", "time to"), or is the participle of
a first-person wish ("I need web rolled back"), or a first-person decision ("I approve", "we reject"),
or a noun after a verb of doing ("give web a restart", "start a rollout of web"). A sentence that opens
with a question word or an auxiliary ("what", "should I", "did anyone", "is it safe to"), or ends in "?"
without an explicit request, is a question: it never commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Mood = Literal["question", "request", "statement"]

_SENTENCE = re.compile(r"(?:[^.!?;:\n]|[.:](?=[^\s.]))+[.!?;:\n]*")
_PIECE = re.compile(r",\s+|\s+(?:and|then|but|so)\s+|\s+-\s+")
_FILLER = re.compile(
    r"^(?:(?:ok(?:ay)?|so|now|then|hey|hi|yo|alright|right|well|um+|hmm+|oh|great|cool|thanks|also|and|"
    r"please|pls|plz|kindly|just|quickly|urgently|asap|ringpilot|bot|team|folks|emergency|urgent|actually)\b[\s,!]*)+"
)
_WH = re.compile(r"^(?:what|what's|whats|which|who|whom|whose|when|where|why|how|how's)\b")
_ASK_YOU = re.compile(
    r"^(?:can|could|would|will|won't|wouldn't)\s+(?:you|u|ya)\b(?:\s+(?:please|pls|kindly|just|quickly|maybe|"
    r"mind|go ahead and|also))*\s*"
)
_AUX = re.compile(
    r"^(?:can|could|should|shall|would|will|may|might|must|is|isn't|are|aren't|was|wasn't|were|do|does|did|"
    r"didn't|doesn't|don't|has|hasn't|have|haven't|had|am|any|anything|is it|would it|do i|do we)\b"
)
_MARKER = re.compile(
    r"^(?:(?:i|we)\s+(?:want|need|would like|wanna|have)\s+to|i'd like to|we'd like to|i wanna|i'm going to|"
    r"we're going to|let's|lets|let us|go ahead and|time to|(?:i|we)\s+need\s+you\s+to|i want you to|"
    r"i'm asking you to|we must|i'd like you to|need to|you should|please)\b\s*"
)
_WISH = re.compile(r"^(?:i|we)\s+(?:need|want|would like)\b|^(?:i|we)'d like\b|^need\b")
_FIRST_PERSON = re.compile(r"^(?:i|we)(?:'m|'re|\s+am|\s+are|\s+hereby)?\s+")
_READ = re.compile(
    r"^(?:show|list|display|tell|give me|get me|find|see|view|look|check|what|which|how|who|when|where|any|report)\b"
)
_DOING = frozenset(
    {
        "start",
        "kick",
        "do",
        "run",
        "trigger",
        "give",
        "begin",
        "launch",
        "perform",
        "initiate",
        "get",
        "schedule",
        "go",
        "need",
        "off",
        "a",
        "an",
        "the",
        "of",
        "for",
    }
)
_HEDGE = re.compile(
    r"\b(?:is|are|was|were|be|been|needs?|should|ought|must|might|may|could|would|think|maybe|perhaps|if|whether|"
    r"not|never|don't|no)\b"
)


@dataclass(frozen=True)
class Verdict:
    """Whether an action verb was commanded, and the rule that says so."""

    commanded: bool
    reason: str


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip(" .!?;:\n")]


def is_question(sentence: str) -> bool:
    """True for a sentence that asks: a question word, an auxiliary first, or a final "?" without a request."""
    head = _FILLER.sub("", sentence.strip())
    if _ASK_YOU.match(head):
        return False
    return bool(_WH.match(head) or _AUX.match(head) or sentence.rstrip().endswith("?"))


def mood_of(text: str) -> Mood:
    """The mood of a whole message: a question if any sentence asks, a request if one carries a request marker."""
    sentences = _sentences(text)
    if any(is_question(s) for s in sentences):
        return "question"
    for sentence in sentences:
        for piece in _PIECE.split(sentence):
            head = _FILLER.sub("", piece.strip())
            if _ASK_YOU.match(head) or _MARKER.match(head) or _WISH.match(head):
                return "request"
    return "statement"


def _piece_verdict(piece: str, verbs: re.Pattern[str], nouns: re.Pattern[str] | None) -> Verdict | None:
    head = _FILLER.sub("", piece.strip())
    asked = _ASK_YOU.match(head)
    if asked:
        head = _FILLER.sub("", head[asked.end() :])
    marker = _MARKER.match(head)
    if marker:
        head = _FILLER.sub("", head[marker.end() :])
    if verbs.match(head):
        how = "a request" if asked else "an explicit request" if marker else "an imperative"
        return Verdict(True, f"{how}: {head[:40]!r}")
    first = _FIRST_PERSON.match(head)
    if first and verbs.match(head[first.end() :]):
        return Verdict(True, f"a first-person decision: {head[:40]!r}")
    if _WISH.match(head) and (verbs.search(head) or (nouns is not None and nouns.search(head))):
        return Verdict(True, f"a first-person wish: {head[:40]!r}")
    found = nouns.search(head) if nouns is not None else None
    if found:
        before = head[: found.start()].split()
        if before and len(before) <= 4 and before[0] in _DOING and not _HEDGE.search(" ".join(before)):
            return Verdict(True, f"an action noun after a verb of doing: {head[:40]!r}")
    return None


def commanded(text: str, verbs: re.Pattern[str], nouns: re.Pattern[str] | None = None) -> Verdict:
    """Whether `text` commands one of `verbs` (anchored patterns) or `nouns` (see the module docstring)."""
    if not (verbs.search(text) or (nouns is not None and nouns.search(text))):
        return Verdict(False, "no action verb")
    mentioned = False
    for sentence in _sentences(text):
        if not (verbs.search(sentence) or (nouns is not None and nouns.search(sentence))):
            continue
        if is_question(sentence):
            return Verdict(False, f"a question: {sentence[:40]!r}")
        for piece in _PIECE.split(sentence):
            verdict = _piece_verdict(piece, verbs, nouns)
            if verdict is not None:
                return verdict
        mentioned = mentioned or not _READ.match(_FILLER.sub("", sentence.strip()))
    return Verdict(False, "the action is mentioned, not requested" if mentioned else "no action requested")
