"""How each intent becomes a tool call: the tool, the entities it cannot do without, and its arguments.

Read by `agent.router.routing`; the arguments are exactly what the user named, plus the tool's own
defaults the router states on purpose (`only_open`, the CAB's highest ring, the decision).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.router.entities import Entities
from agent.router.intents import Intent

Args = dict[str, Any]
#: Intents whose ring is the highest ring to act on ("all rings" means ring 4).
MAX_RING_INTENTS = frozenset({Intent.DEPLOY, Intent.ROLLBACK, Intent.SUBMIT_CAB, Intent.DECIDE})
_ALL_BREAKERS = re.compile(r"\ball\b|\bevery\b|\bstate of\b")


def _some(**values: Any) -> Args:
    return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class IntentSpec:
    """How an intent becomes a tool call (see the module docstring)."""

    tool: str
    required: tuple[str, ...]
    build: Callable[[Entities, str], Args]


SPECS: dict[Intent, IntentSpec] = {
    Intent.RING_DEPLOYMENTS: IntentSpec("query_deployments", ("ring",), lambda e, t: _some(ring=e.ring, app=e.app)),
    Intent.APP_STATUS: IntentSpec("check_status", ("app_or_task",), lambda e, t: _some(app=e.app, task=e.task)),
    Intent.FAILURES: IntentSpec("list_failed_targets", (), lambda e, t: _some(app=e.app, ring=e.ring)),
    Intent.HEALTH: IntentSpec("check_health", (), lambda e, t: {}),
    Intent.BREAKERS: IntentSpec("list_circuit_breakers", (), lambda e, t: {"only_open": not _ALL_BREAKERS.search(t)}),
    Intent.INTEGRATIONS: IntentSpec("list_integration_failures", (), lambda e, t: {}),
    Intent.FIX_DRIFT: IntentSpec(
        "execute_remediation", ("target_or_app",), lambda e, t: _some(target=e.target, app=e.app, ring=e.ring)
    ),
    Intent.RESTART: IntentSpec("restart_service", (), lambda e, t: _some(target=e.target, app=e.app, ring=e.ring)),
    Intent.ROLLBACK: IntentSpec(
        "rollback_deployment", ("app",), lambda e, t: _some(app=e.app, max_ring=e.ring, to_version=e.version)
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
