"""Tool `list_circuit_breakers`: which circuit breakers are open (or every breaker's state).

Answers "what circuit breakers are open?". Breaker state is shared in Redis. Read-only.
"""

from __future__ import annotations

from pydantic import Field

from agent.health.breakers import BreakerState
from agent.tools.base import Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.check_health import breakers_of
from agent.tools.lookups import bullet
from controller.api.policy import Permission


class ListCircuitBreakersInput(ToolInput):
    only_open: bool = Field(True, description="Only breakers that are open or half-open")


class ListCircuitBreakers(Tool[ListCircuitBreakersInput]):
    name = "list_circuit_breakers"
    description = (
        "List circuit breakers (language model provider, execution planes, other integrations) with their state "
        "(closed, open, half_open), failure counts and last error."
    )
    input_model = ListCircuitBreakersInput
    permission = Permission.READ

    async def run(self, args: ListCircuitBreakersInput, ctx: ToolContext) -> ToolOutput:
        breakers, problem = await breakers_of(ctx)
        if problem:
            return ToolOutput(text=f"I could not read the circuit breakers ({problem}).", data={"problem": problem})
        shown = [b for b in breakers if not args.only_open or b.state is not BreakerState.CLOSED]
        if args.only_open:
            text = (
                "Open circuit breakers:\n" + bullet(b.line() for b in shown)
                if shown
                else f"No circuit breaker is open ({len(breakers)} known, all closed)."
            )
        else:
            text = "Circuit breakers:\n" + bullet((b.line() for b in shown), "- none has been used yet")
        return ToolOutput(
            text=text,
            data={"breakers": [{"name": b.name, "state": b.state.value, "failures": b.failures} for b in shown]},
        )
