"""The one tool registry: every tool the model may call, and the only path by which a tool runs.

`invoke` is what a tool call from the model goes through: the permission check (in code, from the
user's role, never from the model), input validation, then `run` for read-only tools or `plan` for
mutating ones, which only yields a proposal (`status.pending`). `execute` runs a proposal after the
user said yes: permission re-checked, claimed in PostgreSQL so a retried turn acts once. Any failure
becomes an error result for the model and the user; nothing here raises into the turn.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from agent.errors import PermissionDenied, ToolError
from agent.llm.base import ToolCall, ToolSpec
from agent.tools.base import Tool, ToolContext, ToolOutput
from agent.tools.cancel_task import CancelTask
from agent.tools.check_health import CheckHealth
from agent.tools.check_status import CheckStatus
from agent.tools.decide_change import DecideChange
from agent.tools.deploy import Deploy
from agent.tools.deployment_history import DeploymentHistory
from agent.tools.execute_remediation import ExecuteRemediation
from agent.tools.list_circuit_breakers import ListCircuitBreakers
from agent.tools.list_failed_targets import ListFailedTargets
from agent.tools.list_integration_failures import ListIntegrationFailures
from agent.tools.list_pending_approvals import ListPendingApprovals
from agent.tools.list_tasks import ListTasks
from agent.tools.query_deployments import QueryDeployments
from agent.tools.restart_service import RestartService
from agent.tools.rollback_deployment import RollbackDeployment
from agent.tools.submit_cab import SubmitCab
from controller.api.conversation import PendingAction, ResourceRef
from controller.kube.client import ApiException
from controller.storage import claims
from controller.storage.audit import AuditEvent, record_audit
from controller.telemetry.scopes import traced_tool_call

logger = logging.getLogger(__name__)

Outcome = Literal["ok", "error", "denied", "proposed", "executed", "declined"]
_ACTIONS = uuid.UUID("2b8f7f7e-2c1d-4d0e-9a43-5f6a1c0d9e11")
OWNER = f"agent-{socket.gethostname()}-{os.getpid()}"

ALL_TOOLS: tuple[Tool[Any], ...] = (
    QueryDeployments(),
    CheckStatus(),
    ListFailedTargets(),
    CheckHealth(),
    ListCircuitBreakers(),
    ListIntegrationFailures(),
    ExecuteRemediation(),
    RestartService(),
    RollbackDeployment(),
    SubmitCab(),
    ListPendingApprovals(),
    DecideChange(),
    ListTasks(),
    CancelTask(),
    DeploymentHistory(),
    Deploy(),
)


@dataclass(frozen=True)
class Invocation:
    """What one tool call came to: the outcome, the output for model and user, a proposal if any."""

    call: ToolCall
    outcome: Outcome
    output: ToolOutput
    permission: str
    mutating: bool
    proposal: PendingAction | None = None
    duration_ms: int = 0

    @property
    def is_error(self) -> bool:
        return self.outcome in ("error", "denied")


def action_id(conversation_uid: str, turn_id: str, call_id: str) -> str:
    """The stable id of a proposal: the same tool call of the same turn always proposes the same action."""
    return str(uuid.uuid5(_ACTIONS, f"{conversation_uid}/{turn_id}/{call_id}"))


def _validation_text(tool: str, error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "input"
        problems.append(f"{where}: {item['msg']}")
    return f"Invalid arguments for {tool}: " + "; ".join(problems[:5])


class ToolRegistry:
    """Looks tools up, describes them to the model, and runs them safely."""

    def __init__(self, tools: tuple[Tool[Any], ...] = ALL_TOOLS) -> None:
        self.tools = {tool.name: tool for tool in tools}
        # Built once: pydantic regenerating 16 JSON schemas on every model round was a quarter of a turn.
        self._specs = tuple(ToolSpec(t.name, t.description, t.schema()) for t in self.tools.values())

    def specs(self) -> tuple[ToolSpec, ...]:
        """What the model sees of every tool (the same objects each call: providers only read them)."""
        return self._specs

    def denied_for(self, ctx: ToolContext) -> list[str]:
        """Tools the user's role may not use (the offline router then skips asking for entities)."""
        return sorted(name for name, tool in self.tools.items() if tool.permission not in ctx.permissions)

    async def audit(self, ctx: ToolContext, action: str, reason: str, detail: dict[str, Any]) -> None:
        if ctx.services.pool is None:
            return
        event = AuditEvent(
            correlation_id=ctx.correlation_id,
            actor=ctx.user,
            actor_role=ctx.role.value,
            kind="Conversation",
            namespace=ctx.namespace,
            name=ctx.conversation,
            action=action,
            reason=reason[:1000],
            detail=detail,
        )
        try:
            await record_audit(ctx.services.pool, event)
        except Exception as error:  # the turn goes on; the audit failure itself is logged
            logger.error("Audit row %s not written (correlation %s): %s", action, ctx.correlation_id, error)

    def _check(self, call: ToolCall, ctx: ToolContext) -> tuple[Tool[Any], Any]:
        tool = self.tools.get(call.name)
        if tool is None:
            raise ToolError(f"There is no tool named {call.name}. Tools: {', '.join(sorted(self.tools))}.")
        if tool.permission not in ctx.permissions:
            held = sorted(p.value for p in ctx.permissions)
            raise PermissionDenied(tool.name, tool.permission.value, ctx.role.value, held)
        try:
            return tool, tool.parse(call.arguments)
        except ValidationError as error:
            raise ToolError(_validation_text(tool.name, error)) from error

    @traced_tool_call
    async def invoke(self, call: ToolCall, ctx: ToolContext, *, turn_id: str, proposals: int = 0) -> Invocation:
        """Run one tool call from the model (see the module docstring)."""
        started = time.perf_counter()
        tool = self.tools.get(call.name)
        permission = tool.permission.value if tool else "unknown"
        mutating = bool(tool and tool.mutating)

        def done(outcome: Outcome, output: ToolOutput, proposal: PendingAction | None = None) -> Invocation:
            elapsed = int((time.perf_counter() - started) * 1000)
            return Invocation(call, outcome, output, permission, mutating, proposal, elapsed)

        try:
            tool, args = self._check(call, ctx)
            if not tool.mutating:
                return done("ok", await tool.run(args, ctx))
            if proposals:
                raise ToolError("Only one action can wait for confirmation at a time; ask the user about the first.")
            plan = await tool.plan(args, ctx)
            arguments = plan.arguments
            if arguments is None:
                arguments = args.model_dump(mode="json", exclude_none=True)
            tool.parse(arguments)
            proposal = PendingAction(
                id=action_id(ctx.conversation_uid, turn_id, call.id),
                tool=tool.name,
                summary=plan.summary[:1024],
                arguments=arguments,
                message_id=turn_id,
                proposed_at=ctx.services.now(),
            )
            await self.audit(ctx, "ActionProposed", plan.summary, {"tool": tool.name, "action": proposal.id})
            text = f"I can {plan.summary}. Reply yes to go ahead or no to cancel."
            return done(
                "proposed", ToolOutput(text=text, data={"proposal": proposal.id, "awaiting": "yes or no"}), proposal
            )
        except PermissionDenied as error:
            await self.audit(ctx, "PermissionDenied", str(error), {"tool": call.name})
            return done("denied", ToolOutput(text=str(error)))
        except ToolError as error:
            return done("error", ToolOutput(text=str(error)))
        except ApiException as error:
            return done("error", ToolOutput(text=f"The Kubernetes API failed (HTTP {error.status}: {error.reason})."))
        except Exception as error:  # a tool bug must not crash the turn; it is logged and reported
            logger.exception("Tool %s failed (correlation %s)", call.name, ctx.correlation_id)
            return done("error", ToolOutput(text=f"The {call.name} tool failed unexpectedly ({type(error).__name__})."))

    @traced_tool_call
    async def execute(self, pending: PendingAction, ctx: ToolContext) -> Invocation:
        """Carry out a confirmed proposal exactly once (claimed under its id)."""
        call = ToolCall(id=f"confirm-{pending.id}", name=pending.tool, arguments=pending.arguments)
        started = time.perf_counter()
        tool = self.tools.get(pending.tool)

        def done(outcome: Outcome, output: ToolOutput) -> Invocation:
            elapsed = int((time.perf_counter() - started) * 1000)
            return Invocation(call, outcome, output, tool.permission.value if tool else "unknown", True, None, elapsed)

        key = f"chat-action/{ctx.conversation_uid}/{pending.id}"
        pool = ctx.services.pool
        try:
            tool, args = self._check(call, ctx)
            if pool is not None and not await claims.claim(pool, key, ctx.correlation_id, OWNER):
                previous = await claims.get(pool, key)
                if previous is not None and previous.outcome is not None:
                    stored = previous.outcome
                    refs = tuple(ResourceRef.model_validate(r) for r in stored.get("resources", []))
                    return done("executed", ToolOutput(text=str(stored.get("text", "")), resources=refs))
            output = await tool.execute(args, ctx, pending.id)
            if pool is not None:
                await claims.finish(
                    pool, key, {"text": output.text, "resources": [r.to_wire() for r in output.resources]}
                )
            await self.audit(
                ctx,
                "ActionExecuted",
                pending.summary,
                {
                    "tool": tool.name,
                    "action": pending.id,
                    "resources": [f"{r.kind}/{r.name}" for r in output.resources],
                },
            )
            return done("executed", output)
        except PermissionDenied as error:
            await self.audit(ctx, "PermissionDenied", str(error), {"tool": pending.tool})
            return done("denied", ToolOutput(text=str(error)))
        except ToolError as error:
            text = str(error)
        except ApiException as error:
            text = f"The Kubernetes API failed (HTTP {error.status}: {error.reason})."
        except Exception as error:  # as in invoke: reported, never raised into the turn
            logger.exception("Action %s failed (correlation %s)", pending.tool, ctx.correlation_id)
            text = f"The {pending.tool} action failed unexpectedly ({type(error).__name__})."
        await self.audit(ctx, "ActionFailed", text, {"tool": pending.tool, "action": pending.id})
        if pool is not None:
            await claims.release(pool, key, OWNER)
        return done("error", ToolOutput(text=text))
