"""Tool `check_health`: components and circuit breakers in chat (docs/domain.md §8).

Components are the probes the runtime wires in (Kubernetes API, PostgreSQL, Redis, broker queue
depth, LLM provider, execution planes); breakers come from Redis. Overall: unhealthy if a component
is down, degraded if a breaker is open or half-open, healthy otherwise. Read-only.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.exceptions import RedisError

from agent.health.breakers import Breaker, BreakerState
from agent.tools.base import HealthProbe, Tool, ToolContext, ToolInput, ToolOutput
from controller.api.policy import Permission


class CheckHealthInput(ToolInput):
    pass


async def probe(check: HealthProbe, timeout_seconds: float = 3.0) -> dict[str, Any]:
    """Run one probe with a deadline; an exception is a failed component, never a failed tool."""
    started = time.perf_counter()
    try:
        ok, detail = await asyncio.wait_for(check.check(), timeout_seconds)
    except TimeoutError:
        ok, detail = False, f"no answer within {timeout_seconds:g}s"
    except Exception as error:  # a probe reports any failure as the component being down
        ok, detail = False, f"{type(error).__name__}: {error}"[:200]
    return {
        "name": check.name,
        "ok": ok,
        "detail": detail,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
    }


async def breakers_of(ctx: ToolContext) -> tuple[list[Breaker], str | None]:
    """The shared breakers, or the reason they could not be read."""
    board = ctx.services.breakers
    if board is None:
        return [], "no breaker store configured"
    try:
        return await board.snapshot(), None
    except (RedisError, OSError) as error:
        return [], f"breakers unreadable: {type(error).__name__}"


class CheckHealth(Tool[CheckHealthInput]):
    name = "check_health"
    description = (
        "System health: each component (Kubernetes API, PostgreSQL, Redis, broker queue depth, language model "
        "provider, execution planes) with latency, and every circuit breaker's state."
    )
    input_model = CheckHealthInput
    permission = Permission.READ

    async def run(self, args: CheckHealthInput, ctx: ToolContext) -> ToolOutput:
        components = list(await asyncio.gather(*(probe(p) for p in ctx.services.probes)))
        breakers, problem = await breakers_of(ctx)
        tripped = [b for b in breakers if b.state is not BreakerState.CLOSED]
        if any(not c["ok"] for c in components):
            overall = "unhealthy"
        elif tripped or problem:
            overall = "degraded"
        else:
            overall = "healthy"
        lines = [
            f"- {c['name']}: {'ok' if c['ok'] else 'DOWN'} ({c['detail']}, {c['latency_ms']} ms)" for c in components
        ]
        breaker_text = f"{len(tripped)} of {len(breakers)} circuit breakers open" + (
            ": " + "; ".join(b.line() for b in tripped) if tripped else ""
        )
        text = f"System health: {overall}.\n" + "\n".join(lines) + f"\n- circuit breakers: {problem or breaker_text}"
        return ToolOutput(
            text=text,
            data={
                "status": overall,
                "components": components,
                "circuit_breakers": {"total": len(breakers), "open": len(tripped), "problem": problem},
            },
        )
