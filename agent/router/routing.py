"""The offline router's decision: which tool to call with which arguments, what to ask, or what it can do.

`route` classifies the message, extracts entities, and either calls the intent's tool or asks for
the first missing entity ("Which app?"). The question is remembered as an `awaiting` dict (kept in
the assistant message's meta) so the next turn's answer ("payments", "1.4.2", "canary") completes
the request. When the user lacks the tool's permission it does not ask: it calls the tool at once
so the registry's permission check, in code, gives the refusal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agent.router.entities import RING_LABELS, STOPWORDS, Entities, extract, normalize, ring_of
from agent.router.intents import Intent, classify

Args = dict[str, Any]


def _some(**values: Any) -> Args:
    return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class IntentSpec:
    """How an intent becomes a tool call: the tool, the entities it cannot do without, the arguments."""

    tool: str
    required: tuple[str, ...]
    build: Callable[[Entities, str], Args]


SPECS: dict[Intent, IntentSpec] = {
    Intent.RING_DEPLOYMENTS: IntentSpec("query_deployments", ("ring",), lambda e, t: _some(ring=e.ring, app=e.app)),
    Intent.APP_STATUS: IntentSpec("check_status", ("app_or_task",), lambda e, t: _some(app=e.app, task=e.task)),
    Intent.FAILURES: IntentSpec("list_failed_targets", (), lambda e, t: _some(app=e.app, ring=e.ring)),
    Intent.HEALTH: IntentSpec("check_health", (), lambda e, t: {}),
    Intent.BREAKERS: IntentSpec(
        "list_circuit_breakers", (), lambda e, t: {"only_open": not re.search(r"\ball\b|\bevery\b|\bstate of\b", t)}
    ),
    Intent.INTEGRATIONS: IntentSpec("list_integration_failures", (), lambda e, t: {}),
    Intent.FIX_DRIFT: IntentSpec(
        "execute_remediation", ("target_or_app",), lambda e, t: _some(target=e.target, app=e.app, ring=e.ring)
    ),
    Intent.RESTART: IntentSpec("restart_service", (), lambda e, t: _some(target=e.target, app=e.app, ring=e.ring)),
    Intent.ROLLBACK: IntentSpec(
        "rollback_deployment", ("app",), lambda e, t: _some(app=e.app, max_ring=e.ring, version=e.version)
    ),
    Intent.SUBMIT_CAB: IntentSpec(
        "submit_cab",
        ("app", "version"),
        lambda e, t: _some(app=e.app, version=e.version, max_ring=e.ring if e.ring is not None else 4),
    ),
    Intent.PENDING_APPROVALS: IntentSpec("list_pending_approvals", (), lambda e, t: {}),
    Intent.DECIDE: IntentSpec(
        "decide_change",
        (),
        lambda e, t: _some(
            change_request=e.change,
            decision=e.decision or "Approve",
            max_ring=e.ring,
            min_success_rate=e.min_success_rate,
            comment=t[:200],
        ),
    ),
    Intent.RUNNING_TASKS: IntentSpec("list_tasks", (), lambda e, t: {}),
    Intent.CANCEL_TASK: IntentSpec("cancel_task", (), lambda e, t: _some(task=e.task, app=e.app)),
    Intent.HISTORY: IntentSpec("deployment_history", (), lambda e, t: _some(app=e.app)),
    Intent.DEPLOY: IntentSpec(
        "deploy", ("app", "version", "ring"), lambda e, t: _some(app=e.app, version=e.version, max_ring=e.ring)
    ),
}

CAPABILITIES = """I can help with these (a few example phrasings):
- Deployments: "show me deployments in ring 2", "what's the status of web?", "which devices have deployment failures?"
- Health: "check system health", "what circuit breakers are open?", "are there any integration failures?"
- Remediation: "fix the drift on web-ring-0", "restart the failed service", "roll back web to the previous version"
- CAB: "submit web 1.4.2 for approval", "show me pending approvals",
  "approve payments-2-0-0-cab only up to ring 1 with at least 99% success"
- Tasks: "what async tasks are running?", "cancel the failing task", "show deployment history"
- Deploy: "deploy web 1.4.2 to ring 1"
Anything that changes something is proposed first and done only after you reply yes."""

_DROP = re.compile(r"^\W*(never ?mind|forget (?:it|that)|cancel that|stop|nothing|skip it|no thanks?)\W*$")
_BARE_RING = re.compile(r"^\W*(?:up to |to |into |ring |rings? )*([0-4])\W*$")
_BARE_NAME = re.compile(r"^\W*(?:the |app |application )*([a-z][a-z0-9-]{0,62})(?: app)?\W*$")


@dataclass(frozen=True)
class Decision:
    """What the router decided: call `tool` with `arguments`, or answer `text` (and maybe await an entity)."""

    intent: Intent | None = None
    tool: str | None = None
    arguments: Args = field(default_factory=dict)
    text: str = ""
    awaiting: dict[str, Any] | None = None


def _missing(spec: IntentSpec, entities: Entities) -> str | None:
    for need in spec.required:
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


def _answer(missing: str, text: str, known_apps: Iterable[str]) -> Entities:
    """Entities from a bare answer to a question about `missing` ("2", "payments")."""
    if missing == "ring":
        bare = _BARE_RING.match(text)
        if bare:
            return Entities(ring=int(bare.group(1)))
        ring = ring_of(text)
        return Entities(ring=ring)
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


def _decide(intent: Intent, entities: Entities, text: str, known_apps: list[str], denied: set[str]) -> Decision:
    spec = SPECS[intent]
    missing = _missing(spec, entities)
    if missing is not None and spec.tool not in denied:
        if missing == "app_or_task" and entities.ambiguous_apps:
            missing = "app"
        return Decision(
            intent=intent,
            text=question(missing, entities, known_apps),
            awaiting={"intent": intent.value, "entities": entities.to_dict(), "missing": missing, "text": text},
        )
    return Decision(intent=intent, tool=spec.tool, arguments=spec.build(entities, text))


def route(
    text: str,
    known_apps: Iterable[str] = (),
    awaiting: dict[str, Any] | None = None,
    denied_tools: Iterable[str] = (),
) -> Decision:
    """Decide what to do with one user message (see the module docstring)."""
    apps = sorted(set(known_apps))
    denied = set(denied_tools)
    norm = normalize(text)
    entities = extract(norm, apps)
    intent = classify(norm, entities)
    if awaiting is not None:
        if _DROP.match(norm):
            return Decision(text="OK, I dropped that request.")
        previous = Intent(awaiting["intent"])
        if intent is None or intent is previous:
            answer = _answer(str(awaiting.get("missing")), norm, apps)
            known = Entities.from_dict(awaiting.get("entities") or {})
            merged = known.merged(
                Entities.from_dict({k: v for k, v in entities.to_dict().items() if k != "decision"})
            ).merged(answer)
            if merged.app is not None:
                merged = Entities(**{**merged.__dict__, "ambiguous_apps": ()})
            return _decide(previous, merged, str(awaiting.get("text") or norm), apps, denied)
    if intent is None:
        return Decision(text=CAPABILITIES)
    return _decide(intent, entities, norm, apps, denied)
