"""Entity extraction for the offline router: ring, app, version, target, task, change request, conditions.

Pure functions over the user's text (and the names of the apps the cluster runs, when known), so
every phrasing is testable without I/O. Rings are recognised by number ("ring 2", "r2", "ring two")
and by name (Lab, Canary, Pilot, Department, Global); approval conditions by phrases such as
"only up to ring 1" and "at least 99 % success".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

RING_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4}
RING_NAMES = {
    "lab": 0,
    "canary": 1,
    "pilot": 2,
    "department": 3,
    "departmental": 3,
    "dept": 3,
    "global": 4,
}
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
RING_LABELS = ("Lab", "Canary", "Pilot", "Department", "Global")
#: Words that are never an app, a target or a task name.
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "it",
        "this",
        "that",
        "these",
        "those",
        "me",
        "my",
        "our",
        "your",
        "all",
        "any",
        "every",
        "everything",
        "something",
        "app",
        "apps",
        "application",
        "applications",
        "service",
        "services",
        "deployment",
        "deployments",
        "version",
        "versions",
        "ring",
        "rings",
        "to",
        "in",
        "on",
        "of",
        "for",
        "with",
        "and",
        "or",
        "is",
        "are",
        "was",
        "be",
        "please",
        "now",
        "then",
        "up",
        "down",
        "back",
        "status",
        "state",
        "health",
        "history",
        "task",
        "tasks",
        "change",
        "changes",
        "request",
        "requests",
        "target",
        "targets",
        "device",
        "devices",
        "what",
        "which",
        "who",
        "how",
        "why",
        "when",
        "where",
        "there",
        "here",
        "previous",
        "last",
        "latest",
        "new",
        "current",
        "failed",
        "failing",
        "broken",
        "drift",
        "drifted",
        "yes",
        "no",
        "ok",
        "okay",
        "approval",
        "approvals",
        "cab",
        "release",
        "releases",
        "rollout",
        "rollouts",
        "system",
        "platform",
        "everyone",
        "anything",
        "one",
        "chg",
        "cr",
    }
)

_NAME = r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?"
_RING_SPAN = re.compile(r"\brings?\s*([0-4])\s*(?:-|\u2013|to|through|thru|\.\.)\s*(?:ring\s*)?([0-4])\b")
_RING_NUMBER = re.compile(r"\bring[\s-]*#?\s*([0-4])\b|\br([0-4])\b")
_RING_WORD = re.compile(r"\bring\s+(zero|one|two|three|four)\b")
_RING_NAME = re.compile(r"\b(lab|canary|pilot|departmental|department|dept|global)\b")
_VERSION = re.compile(r"(?<![\w.-])v?(\d+(?:\.\d+){1,3}(?:-[0-9a-z][0-9a-z.]*)?)(?![\w.%]|\s*%|\s*percent)")
_SUCCESS = (
    re.compile(r"(\d{1,3}(?:\.\d+)?)\s*(%|percent)\s*(?:of\s+)?(?:targets?\s+)?(?:success|succe|healthy|health|pass)"),
    re.compile(
        r"(?:success|health)(?:\s*rate)?\s*(?:of|at|must be|should be|>=|≥|>|above|over|min(?:imum)?|"
        r"at least|no less than|\s)*\s*(\d{1,3}(?:\.\d+)?)\s*(%|percent)?"
    ),
    re.compile(r"(?:at least|minimum of|min\.?|no less than)\s*(\d{1,3}(?:\.\d+)?)\s*(%|percent)"),
)
_TARGET_PATH = re.compile(r"\b(" + _NAME + r")/(" + _NAME + r")\b")
_TARGET_WORD = re.compile(
    r"\b(?:device|target|host|machine|node|workload|server|endpoint|assignment|instance)\s+(" + _NAME + ")"
)
_TARGET_ASSIGNMENT = re.compile(r"\b([a-z][a-z0-9-]*-ring-[0-4])\b")
_TASK = re.compile(r"\b(?:task|dtask|deploymenttask|job)\s+(" + _NAME + ")")
_CHANGE = re.compile(  # a lookahead, so overlapping candidates ("reject chg x-1") are all tried
    r"(?=\b(?:change request|change|cr|chg|cab request|request|approve|reject|deny|decline|veto)\s+"
    r"(?:the\s+)?(?:change\s+(?:request\s+)?)?(" + _NAME + "))"
)
_APP_PATTERNS = (
    re.compile(r"\bapp(?:lication)?\s+(" + _NAME + ")"),
    re.compile(
        r"\b(?:status|state|health|history|version|versions|progress|drift)\s+(?:of|for|on)\s+(?:the\s+)?("
        + _NAME
        + ")"
    ),
    re.compile(
        r"\b(?:deploy|ship|release|roll\s?out|push|promote|upgrade|update|submit|roll\s?back|revert|downgrade|"
        r"restart|bounce|reboot)\s+(?:the\s+)?(?:app\s+)?([a-z][a-z0-9-]*)(?=\s+(?:v?\d|to|in|on|back|for|from|$))"
    ),
    re.compile(r"\bis\s+(?:the\s+)?([a-z][a-z0-9-]*)\s+(?:app\s+)?(?:ok|okay|healthy|up|down|running|fine|doing)\b"),
    re.compile(r"\bhow(?:'s| is)\s+(?:the\s+)?([a-z][a-z0-9-]*)\b"),
    re.compile(r"^\s*([a-z][a-z0-9-]*)\s+(?:status|health|history)\b"),
)
_APPROVE = re.compile(r"\b(approve[sd]?|approving|accept|sign(?:ed)?[\s-]off|lgtm|green[\s-]?light|okay the|ok the)\b")
_REJECT = re.compile(r"\b(reject(?:ed|s)?|deny|denied|decline[sd]?|refuse[sd]?|veto(?:ed)?|turn(?:ed)? down)\b")


@dataclass(frozen=True)
class Entities:
    """What a message names. None means "not mentioned"."""

    ring: int | None = None
    app: str | None = None
    version: str | None = None
    target: str | None = None
    task: str | None = None
    change: str | None = None
    min_success_rate: float | None = None
    decision: Literal["Approve", "Reject"] | None = None
    ambiguous_apps: tuple[str, ...] = ()

    def merged(self, newer: Entities) -> Entities:
        """These entities overridden by every entity `newer` names."""
        updates = {f.name: getattr(newer, f.name) for f in fields(newer) if getattr(newer, f.name) not in (None, ())}
        return replace(self, **updates)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ambiguous_apps"] = list(self.ambiguous_apps)
        return {k: v for k, v in data.items() if v not in (None, [])}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entities:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["ambiguous_apps"] = tuple(values.get("ambiguous_apps") or ())
        return cls(**values)


def normalize(text: str) -> str:
    """Lower-case, straight quotes, single spaces."""
    text = text.translate(_QUOTES)
    return re.sub(r"\s+", " ", text.lower()).strip()


def ring_of(text: str) -> int | None:
    """The ring a text names: the highest of a span ("rings 0-2"), a number, a number word, or a name."""
    span = _RING_SPAN.search(text)
    if span:
        return max(int(span.group(1)), int(span.group(2)))
    number = _RING_NUMBER.search(text)
    if number:
        return int(number.group(1) or number.group(2))
    word = _RING_WORD.search(text)
    if word:
        return RING_WORDS[word.group(1)]
    name = _RING_NAME.search(text)
    if name:
        return RING_NAMES[name.group(1)]
    return None


def success_rate_of(text: str) -> tuple[float | None, str]:
    """A minimum success rate ("at least 99 % success" → 0.99) and the text without that phrase."""
    for pattern in _SUCCESS:
        match = pattern.search(text)
        if match is None:
            continue
        value = float(match.group(1))
        percent = match.group(2) is not None or value > 1
        rate = value / 100 if percent else value
        if 0 < rate <= 1:
            return round(rate, 4), text[: match.start()] + " " + text[match.end() :]
    return None, text


def _name_ok(name: str | None) -> str | None:
    if name is None or name in STOPWORDS or len(name) > 63 or name.isdigit():
        return None
    return name


def apps_of(text: str, known_apps: Iterable[str]) -> tuple[str | None, tuple[str, ...]]:
    """The app a text names: a known app mentioned as a word, else one found by phrasing.

    Returns (app, ambiguous): when several known apps are mentioned, app is None and ambiguous lists them.
    """
    mentioned = sorted({a for a in known_apps if re.search(rf"(?<![\w-]){re.escape(a)}(?![\w-])", text)})
    if len(mentioned) == 1:
        return mentioned[0], ()
    if len(mentioned) > 1:
        return None, tuple(mentioned)
    for pattern in _APP_PATTERNS:
        match = pattern.search(text)
        if match and _name_ok(match.group(1)) and not _RING_NAME.fullmatch(match.group(1)):
            return match.group(1), ()
    return None, ()


def decision_of(text: str) -> Literal["Approve", "Reject"] | None:
    if _REJECT.search(text):
        return "Reject"
    if _APPROVE.search(text):
        return "Approve"
    return None


def extract(text: str, known_apps: Iterable[str] = ()) -> Entities:
    """Every entity `text` names."""
    text = normalize(text)
    rate, rest = success_rate_of(text)
    version_match = _VERSION.search(rest)
    version = version_match.group(1) if version_match else None
    target_path = _TARGET_PATH.search(rest)
    target: str | None = None
    if target_path:
        target = f"{target_path.group(1)}/{target_path.group(2)}"
    else:
        word = _TARGET_WORD.search(rest) or _TARGET_ASSIGNMENT.search(rest)
        target = _name_ok(word.group(1)) if word else None
    task_match = _TASK.search(rest)
    change = next(
        (m.group(1) for m in _CHANGE.finditer(rest) if _name_ok(m.group(1)) and re.search(r"[-\d]", m.group(1))),
        None,
    )
    app, ambiguous = apps_of(rest, known_apps)
    if app is not None and app == target:
        app = None  # "drift on web-ring-0" names a target, not an app
    return Entities(
        ring=ring_of(rest),
        app=app,
        version=version,
        target=target,
        task=_name_ok(task_match.group(1)) if task_match else None,
        change=change,
        min_success_rate=rate,
        decision=decision_of(text),
        ambiguous_apps=ambiguous,
    )


def ring_label(ring: int) -> str:
    return f"ring {ring} ({RING_LABELS[ring]})"
