"""Tool `list_integration_failures`: what is failing at the edges — components that are down, breakers
that tripped, and failed steps in the audit trail (execution planes, evidence, notifications).

Answers "are there any integration failures?" (docs/domain.md §8: failed syncs, open breakers and error
counts). Read-only.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import Field

from agent.health.breakers import BreakerState
from agent.tools.base import Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.check_health import breakers_of, probe
from agent.tools.lookups import bullet
from controller.api.policy import Permission

_RECENT_FAILURES = """
SELECT kind, action, count(*) AS n, max(at) AS last_at,
       (array_agg(reason ORDER BY id DESC))[1] AS last_reason
FROM audit_events
WHERE at >= %s AND (action ILIKE '%%fail%%' OR action ILIKE '%%error%%' OR action ILIKE '%%escalat%%'
                    OR action ILIKE '%%unavailable%%')
GROUP BY kind, action
ORDER BY n DESC
LIMIT 20
"""


class ListIntegrationFailuresInput(ToolInput):
    hours: int = Field(24, ge=1, le=24 * 30, description="How far back to look in the audit trail, in hours")


class ListIntegrationFailures(Tool[ListIntegrationFailuresInput]):
    name = "list_integration_failures"
    description = (
        "Integration failures: components that are down, circuit breakers that are open, and failed or "
        "escalated steps recorded in the audit trail in the last hours, with counts and the latest reason."
    )
    input_model = ListIntegrationFailuresInput
    permission = Permission.READ

    async def run(self, args: ListIntegrationFailuresInput, ctx: ToolContext) -> ToolOutput:
        down = [c for c in await asyncio.gather(*(probe(p) for p in ctx.services.probes)) if not c["ok"]]
        breakers, problem = await breakers_of(ctx)
        tripped = [b for b in breakers if b.state is not BreakerState.CLOSED]
        failures: list[dict[str, object]] = []
        if ctx.services.pool is not None:
            since = ctx.services.now() - timedelta(hours=args.hours)
            async with ctx.services.pool.connection() as conn:
                cursor = await conn.execute(_RECENT_FAILURES, (since,))
                failures = list(await cursor.fetchall())
        lines = [f"component {c['name']} is down: {c['detail']}" for c in down]
        lines += [f"breaker {b.line()}" for b in tripped]
        if problem:
            lines.append(problem)
        lines += [
            f"{row['n']} x {row['action']} on {row['kind'] or 'system'} (last: {row['last_reason'] or 'no reason'})"
            for row in failures
        ]
        text = (
            f"Integration failures (last {args.hours} h):\n" + bullet(lines, "")
            if lines
            else f"No integration failures: every component answers, no breaker is open, and the audit "
            f"trail has no failed step in the last {args.hours} h."
        )
        return ToolOutput(
            text=text,
            data={
                "components_down": [c["name"] for c in down],
                "open_breakers": [b.name for b in tripped],
                "failed_steps": [{"kind": r["kind"], "action": r["action"], "count": r["n"]} for r in failures],
            },
        )
