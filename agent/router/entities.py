"""Entity extraction for the offline router: ring, app, version, target, task, change request, conditions.

Pure functions over the user's text (and the names of the apps the cluster runs, when known), so
every phrasing is testable without I/O. Each entity is found by a named rule, and `extract_explained`
says which rule found what. Names the cluster does not know yet are classified by their shape
(`web-ring-0` is a target, `web-1-4-2` a task, `web-1-4-2-cab` a change) and by the words around them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
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
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-"})
RING_LABELS = ("Lab", "Canary", "Pilot", "Department", "Global")
#: Words that are never an app, a target or a task name.
_STOPWORDS = """
a an the it its this that these those me my our your us them all any every everything something anything
app apps application applications service services deployment deployments version versions ring rings to in
on of for with and or is are was be please now then up down back out status state health history task tasks
change changes request requests target targets device devices what which who how why when where there here
previous last latest new current failed failing broken crashed stuck unhealthy bad whole entire drift drifted
yes no ok okay approval approvals cab release releases rollout rollouts system platform everyone one chg cr
config configuration job jobs pods pod build builds log trail rollback restart deploy fix cancel submit approve
reject review board approvers today yesterday again everywhere fleet database db redis postgres ringpilot
llm control plane connector connectors integration integrations i we you he she they sure just also
recently before already later tonight first fail fails anyone someone somebody anybody right so not
host hosts machine machines node nodes server servers endpoint endpoints assignment instance workload workloads
running being overall currently active ongoing pending queued general component components ready live
overview summary report update updates breaker breakers circuit circuits audit changelog timeline
things stuff check checks
"""
STOPWORDS = frozenset(_STOPWORDS.split())
RING_PATTERN = (
    r"\brings?[\s-]*#?\s*[0-4](?:\s*(?:-|to|through|thru|\.\.|and)\s*(?:ring\s*)?[0-4])?\b|\br[0-4]\b"
    r"|\bring\s+(?:zero|one|two|three|four)\b|\b(?:the\s+)?(?:lab|canary|pilot|departmental|department|dept|global)"
    r"(?:\s+(?:ring|group))?\b"
)
ALL_RINGS = re.compile(
    r"\b(?:all|every|each)(?: of)?(?: the)? rings?\b|\beverywhere\b|\bfleet[- ]?wide\b|\bglobally\b|\ball the way\b"
)
_NAME = r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?"
_APP = r"(?<!['\w-])[a-z][a-z0-9]*(?:-[a-z0-9]+)*"
_RING_NUMBER = re.compile(r"\brings?[\s-]*#?\s*([0-4])\b|\br([0-4])\b|\bring-([0-4])(?=-|/|\b)")
_RING_SPAN = re.compile(r"\brings?\s*[0-4]\s*(?:-|to|through|thru|\.\.|and)\s*(?:ring\s*)?([0-4])\b")
_RING_WORD = re.compile(r"\bring\s+(zero|one|two|three|four)\b")
_RING_NAME = re.compile(r"\b(lab|canary|pilot|departmental|department|dept|global)\b")
_VERSION = re.compile(
    r"(?<![\w.-])(?:v|version\s+|v\s)?(\d+(?:\.\d+){1,3}(?:-[0-9a-z][0-9a-z.]*)?(?:\+[0-9a-z.]+)?)"
    r"(?![\w%]|\.\d|\s*%|\s*percent)"
    r"|(?<![\w.-])(?:v|version\s+)(\d+)(?![\w.%])"
)
_SUCCESS = (
    re.compile(r"(\d{1,3}(?:\.\d+)?)\s*(%|percent)\s*(?:of\s+)?(?:targets?\s+)?(?:success|succe|healthy|health|pass)"),
    re.compile(
        r"(?:success|health)(?:\s*rate)?\s*(?:gate\s*)?(?:of|at|must be|should be|stays?|>=|≥|>|above|over|"
        r"min(?:imum)?|at least|no less than|\s)*\s*(\d{1,3}(?:\.\d+)?)\s*(%|percent)?"
    ),
    re.compile(r"(?:at least|minimum of|min\.?|no less than|above)\s*(\d{1,3}(?:\.\d+)?)\s*(%|percent)"),
    re.compile(r"(?:an?\s+)?(\d{1,3}(?:\.\d+)?)\s*(%|percent)\s+(?:success\s+)?gate"),
)
_TARGET_PATH = re.compile(r"\b(" + _NAME + r")/(" + _NAME + r")\b")
_TARGET_WORD = re.compile(
    r"\b(?:device|target|host|machine|node|workload|server|endpoint|assignment|instance)\s+(" + _NAME + ")"
)
_TARGET_SHAPE = re.compile(r"\b([a-z][a-z0-9-]*-ring-[0-4])\b")
_CHANGE_SHAPE = re.compile(r"(?<![\w/-])(" + _APP + r"-cab)\b|\b((?:chg|cr)-\d+)\b")
_CHANGE_WORD = re.compile(
    r"(?=\b(?:change request|change|cr|chg|cab request|request|approve|reject|deny|decline|veto)\s+"
    r"(?:the\s+)?(?:change\s+(?:request\s+)?)?(" + _NAME + "))"
)
_TASK_WORD = re.compile(r"\b(?:task|dtask|deploymenttask|job)\s+(" + _NAME + ")")
_TASK_SHAPE = re.compile(r"(?<![\w/.-])([a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*(?:-\d+){2,4})(?![\w/.-])")
_VERBS = (
    r"deploy|ship|release|roll\s?out|push|promote|upgrade|update|submit|roll\s?back|revert|downgrade|undo|"
    r"restart|bounce|reboot|recycle|relaunch|remediate|reconcile|resync|sync|heal|repair|converge|halt|abort|"
    r"cancel|stop|terminate|kill|scrap|restore|back out|rollback|put|kick|check on|deployed|released|shipped"
)
_THING = r"service|app|application|deployment|rollout|release|pods?|build|version|job|task|change|workloads?"
_APP_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("app NAME", re.compile(r"\bapp(?:lication)?\s+(" + _APP + ")")),
    ("the NAME service", re.compile(r"\bthe\s+(?:current\s+)?(" + _APP + r")\s+(?:" + _THING + r")\b")),
    (
        "rollout of NAME",
        re.compile(
            r"\b(?:rollout|deployment|deployments|release|releases|job|task|history|log|trail|change|versions?|audit|"
            r"changelog|timeline|records?)\s+"
            r"(?:of|for)\s+(?:the\s+)?(" + _APP + ")"
        ),
    ),
    (
        "status of NAME",
        re.compile(r"\b(?:status|state|health|progress|drift|news)[:]?\s+(?:of|for|on)?\s*(?:the\s+)?(" + _APP + ")"),
    ),
    (
        "verb NAME",
        re.compile(
            r"\b(?:"
            + _VERBS
            + r")\s+(?:the\s+)?(?:app\s+)?("
            + _APP
            + r")(?=\s+(?:v?\d|version|to|in|on|back|for|from|"
            r"up|out|again|last|everywhere|a\b|\?|,)|\s*[?.!,]|$)"
        ),
    ),
    ("NAME VERSION", re.compile(r"\b(" + _APP + r")\s+v?\d+(?:\.\d+)+")),
    ("VERSION of NAME", re.compile(r"\bv?\d+(?:\.\d+)+\s+of\s+(" + _APP + ")")),
    (
        "is NAME ok",
        re.compile(
            r"\bis\s+(?:the\s+)?(" + _APP + r")\s+(?:app\s+)?(?:ok|okay|healthy|up|down|running|fine|doing|looking)\b"
        ),
    ),
    ("how is NAME", re.compile(r"\bhow(?:'s| is| are)\s+(?:the\s+)?(" + _APP + r")\b")),
    (
        "NAME was deployed",
        re.compile(
            r"\b(?:was|were|has|have|had|did|is)\s+(?:the\s+)?(" + _APP + r")\s+(?:last\s+)?(?:been\s+)?"
            r"(?:deployed|released|shipped|rolled|restarted|updated|upgraded|submitted)\b"
        ),
    ),
    (
        "NAME rolled back",
        re.compile(r"\b(" + _APP + r")\s+(?:rolled|restarted|cancelled|canceled|remediated|deployed)\b"),
    ),
    ("give NAME a restart", re.compile(r"\bgive\s+(" + _APP + r")\s+an?\s+(?:restart|bounce|kick|reboot)")),
    ("where is NAME failing", re.compile(r"\bwhere\s+is\s+(" + _APP + r")\s+(?:failing|broken|down)")),
    ("failing for NAME", re.compile(r"\b(?:failing|failed|broken)\s+for\s+(" + _APP + r")\b")),
    ("NAME: status", re.compile(r"^\s*(" + _APP + r")\s*[:,]?\s+(?:status|health|history)\b|^\s*(" + _APP + r"):")),
    ("drift: NAME", re.compile(r"\bdrift:\s+(" + _APP + r")\b")),
    ("bring NAME back", re.compile(r"\b(?:bring|get|start)\s+(" + _APP + r")\s+(?:back|again)\b")),
)
_APPROVE = re.compile(r"\b(approve[sd]?|approving|accept|sign(?:ed)?[\s-]off|lgtm|green[\s-]?light|okay the|ok the)\b")
_REJECT = re.compile(r"\b(reject(?:ed|s|ing)?|deny|denied|decline[sd]?|refuse[sd]?|veto(?:ed)?|turn(?:ed)? down)\b")


def _named(value: object) -> bool:
    """True for an entity value that names something (ring 0 does; None, () and False do not)."""
    return value is not None and value is not False and value != () and value != []


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
    all_rings: bool = False

    def merged(self, newer: Entities) -> Entities:
        """These entities overridden by every entity `newer` names."""
        updates = {f.name: getattr(newer, f.name) for f in fields(newer) if _named(getattr(newer, f.name))}
        return replace(self, **updates)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ambiguous_apps"] = list(self.ambiguous_apps)
        return {k: v for k, v in data.items() if _named(v)}

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
    """The highest ring a text names: by span ("rings 0-2"), number ("ring 2", "r2"), word or name."""
    found = [int(m.group(1)) for m in _RING_SPAN.finditer(text)]
    found += [int(next(g for g in m.groups() if g)) for m in _RING_NUMBER.finditer(text)]
    found += [RING_WORDS[m.group(1)] for m in _RING_WORD.finditer(text)]
    found += [RING_NAMES[m.group(1)] for m in _RING_NAME.finditer(text)]
    return max(found) if found else None


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
    if name is None or name in STOPWORDS or len(name) > 63 or name.isdigit() or _RING_NAME.fullmatch(name):
        return None
    return name


@lru_cache(maxsize=64)
def _mentions(apps: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern that finds every app of `apps` named as a word of its own."""
    if not apps:
        return re.compile(r"(?!)")
    names = "|".join(re.escape(a) for a in sorted(apps, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])({names})(?![\w/-])")


def apps_of(text: str, known_apps: Iterable[str]) -> tuple[str | None, tuple[str, ...], str]:
    """The app a text names: a known app mentioned as a word, else one found by phrasing.

    Returns (app, ambiguous, rule): when several known apps are mentioned, app is None and ambiguous
    lists them; rule names what found the app.
    """
    mentioned = sorted(set(_mentions(tuple(sorted(set(known_apps)))).findall(text)))
    if len(mentioned) == 1:
        return mentioned[0], (), "a known app"
    if len(mentioned) > 1:
        return None, tuple(mentioned), "several known apps"
    for rule, pattern in _APP_PATTERNS:
        for match in pattern.finditer(text):
            name = next((g for g in match.groups() if g), None)
            if _name_ok(name) and not _TASK_SHAPE.fullmatch(name or "") and not (name or "").endswith("-cab"):
                return name, (), rule
    return None, (), ""


def decision_of(text: str) -> Literal["Approve", "Reject"] | None:
    if _REJECT.search(text):
        return "Reject"
    if _APPROVE.search(text):
        return "Approve"
    return None


def _target_of(text: str) -> tuple[str | None, str]:
    path = _TARGET_PATH.search(text)
    if path:
        return f"{path.group(1)}/{path.group(2)}", "a workload path"
    shape = _TARGET_SHAPE.search(text)
    if shape:
        return shape.group(1), "an assignment name (app-ring-N)"
    word = _TARGET_WORD.search(text)
    name = _name_ok(word.group(1)) if word else None
    if name and not _TASK_SHAPE.fullmatch(name):
        return name, "a target word"
    return None, ""


def _change_of(text: str) -> tuple[str | None, str]:
    shape = _CHANGE_SHAPE.search(text)
    if shape:
        return shape.group(1) or shape.group(2), "a change request name (-cab)"
    for match in _CHANGE_WORD.finditer(text):
        name = _name_ok(match.group(1))
        if name and re.search(r"[-\d]", name) and not _TASK_SHAPE.fullmatch(name):
            return name, "a change word"
    return None, ""


def _task_of(text: str) -> tuple[str | None, str]:
    word = _TASK_WORD.search(text)
    if word and _name_ok(word.group(1)) and not word.group(1).endswith("-cab"):
        return word.group(1), "a task word"
    shape = _TASK_SHAPE.search(text)
    if shape and not re.search(r"-ring-[0-4]\b", shape.group(1)):
        return shape.group(1), "a task name (app-version)"
    return None, ""


def extract_explained(text: str, known_apps: Iterable[str] = ()) -> tuple[Entities, tuple[str, ...]]:
    """Every entity `text` names, and for each the rule that found it."""
    text = normalize(text)
    why: list[str] = []
    rate, rest = success_rate_of(text)
    if rate is not None:
        why.append(f"min_success_rate {rate} from a success-rate phrase")
    version_match = _VERSION.search(rest)
    version = (version_match.group(1) or version_match.group(2)) if version_match else None
    target, target_rule = _target_of(rest)
    change, change_rule = _change_of(rest)
    task, task_rule = (None, "") if change else _task_of(rest)
    app, ambiguous, app_rule = apps_of(rest, known_apps)
    if app is not None and app == target:
        app = None  # "drift on web-ring-0" names a target, not an app
    ring = ring_of(rest)
    all_rings = bool(ALL_RINGS.search(rest))
    for name, value, rule in (
        ("version", version, "a version number"),
        ("target", target, target_rule),
        ("change", change, change_rule),
        ("task", task, task_rule),
        ("app", app, app_rule),
        ("ring", ring, "a ring number or name"),
    ):
        if value is not None:
            why.append(f"{name} {value} from {rule}")
    if ambiguous:
        why.append(f"several apps named: {', '.join(ambiguous)}")
    if all_rings:
        why.append("all rings named")
    entities = Entities(
        ring=ring,
        app=app,
        version=version,
        target=target,
        task=task,
        change=change,
        min_success_rate=rate,
        decision=decision_of(text),
        ambiguous_apps=ambiguous,
        all_rings=all_rings,
    )
    return entities, tuple(why)


def extract(text: str, known_apps: Iterable[str] = ()) -> Entities:
    """Every entity `text` names."""
    return extract_explained(text, known_apps)[0]


def ring_label(ring: int) -> str:
    return f"ring {ring} ({RING_LABELS[ring]})"
