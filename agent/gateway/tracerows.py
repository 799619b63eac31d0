"""What PostgreSQL holds about one correlation ID, as trace entries: the database half of `ringpilot trace`.

`database_entries` reads the audit rows (with their trace ids), the chat turns, messages, tool calls
and created resources, the step claims and the rollout history recorded under the ID. Chat text is
shown only to the conversation's owner (or everyone, for an admin): another user's turns appear with
what happened, never with what was said.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.gateway.consoleviews import TraceEntry
from controller.storage.audit import audit_trail
from controller.storage.db import Pool

#: At most this many rows of each table per trace.
ROW_LIMIT = 1000
#: Longest text of one entry's detail.
DETAIL_CHARS = 240
HIDDEN = "(another user's conversation)"

_CONVERSATION = "c.namespace, c.name AS conversation, c.user_id"
_TURNS = f"""
SELECT t.message_id, t.state, t.attempts, t.error_reason, t.error_message, t.updated_at, {_CONVERSATION}
FROM chat_turns t JOIN conversations c ON c.id = t.conversation_id
WHERE t.correlation_id = %s ORDER BY t.updated_at LIMIT %s
"""
_MESSAGES = f"""
SELECT m.seq, m.message_id, m.turn_id, m.role, m.content ->> 'text' AS text, m.created_at, {_CONVERSATION}
FROM messages m JOIN conversations c ON c.id = m.conversation_id
WHERE m.correlation_id = %s AND m.role IN ('user', 'assistant') ORDER BY m.created_at, m.seq LIMIT %s
"""
_TOOL_CALLS = f"""
SELECT t.call_id, t.turn_id, t.tool, t.outcome, t.duration_ms, t.result ->> 'text' AS text, t.created_at,
       {_CONVERSATION}
FROM chat_tool_calls t JOIN conversations c ON c.id = t.conversation_id
WHERE t.correlation_id = %s ORDER BY t.created_at LIMIT %s
"""
_RESOURCES = f"""
SELECT r.kind, r.namespace AS resource_namespace, r.name AS resource_name, r.created_at, {_CONVERSATION}
FROM chat_resources r JOIN conversations c ON c.id = r.conversation_id
WHERE r.correlation_id = %s ORDER BY r.created_at LIMIT %s
"""
_CLAIMS = """
SELECT key, owner, claimed_at, finished_at, outcome FROM step_claims
WHERE correlation_id = %s ORDER BY claimed_at LIMIT %s
"""
_ROLLOUTS = """
SELECT at, task, app, plane, ring, target, action, from_version, to_version, changed FROM rollout_history
WHERE correlation_id = %s ORDER BY id LIMIT %s
"""


def clip(text: str | None, limit: int = DETAIL_CHARS) -> str:
    """`text` on one line, at most `limit` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class Viewer:
    """Whose chat text a trace may show: `user`'s own, or everyone's for an admin."""

    def __init__(self, user: str, *, admin: bool = False) -> None:
        self.user = user
        self.admin = admin

    def may_read(self, owner: str) -> bool:
        return self.admin or owner == self.user


async def _rows(pool: Pool, query: str, correlation_id: str) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cursor = await conn.execute(query, (correlation_id, ROW_LIMIT))
        return list(await cursor.fetchall())


def _chat(row: dict[str, Any], source: Any, at: datetime, what: str, detail: str, viewer: Viewer) -> TraceEntry:
    owner = str(row["user_id"])
    return TraceEntry(
        at=at,
        source=source,
        kind="Conversation",
        namespace=row["namespace"],
        name=row["conversation"],
        what=what,
        actor=owner,
        detail=detail if viewer.may_read(owner) else HIDDEN,
    )


def _claim_detail(row: dict[str, Any]) -> str:
    outcome = row["outcome"]
    if row["finished_at"] is None or not isinstance(outcome, dict):
        return f"{row['key']} claimed by {row['owner']}, not finished"
    seconds = (row["finished_at"] - row["claimed_at"]).total_seconds()
    ended = "ok" if outcome.get("ok") is True else f"failed: {clip(str(outcome.get('error', '')), 120)}"
    return f"{row['key']} by {row['owner']}, {ended} in {seconds:.1f} s"


async def database_entries(pool: Pool, correlation_id: str, viewer: Viewer) -> list[TraceEntry]:
    """Every row recorded under `correlation_id`, as entries (unsorted)."""
    entries = [
        TraceEntry(
            at=row.at,
            source="audit",
            kind=row.kind,
            namespace=row.namespace,
            name=row.name,
            what=row.action,
            actor=row.actor,
            detail=clip(row.reason),
            trace_id=row.trace_id,
        )
        for row in await audit_trail(pool, correlation_id, limit=ROW_LIMIT)
    ]
    for row in await _rows(pool, _TURNS, correlation_id):
        state = f"turn {row['message_id']} {row['state']}"
        error = f"{row['error_reason']}: {row['error_message']}" if row["error_reason"] else ""
        detail = clip(f"attempts {row['attempts']}" + (f"; {error}" if error else ""))
        entries.append(_chat(row, "turn", row["updated_at"], state, detail, viewer))
    for row in await _rows(pool, _MESSAGES, correlation_id):
        what = f"{row['role']} {row['message_id'] or row['turn_id'] or row['seq']}"
        entries.append(_chat(row, "message", row["created_at"], what, clip(row["text"]), viewer))
    for row in await _rows(pool, _TOOL_CALLS, correlation_id):
        what = f"tool {row['tool']} {row['outcome']}"
        detail = clip(f"{row['duration_ms']} ms: {row['text'] or ''}")
        entries.append(_chat(row, "tool", row["created_at"], what, detail, viewer))
    for row in await _rows(pool, _RESOURCES, correlation_id):
        created = f"created {row['kind']} {row['resource_namespace']}/{row['resource_name']}"
        entries.append(_chat(row, "resource", row["created_at"], "ResourceCreated", created, viewer))
    for row in await _rows(pool, _CLAIMS, correlation_id):
        at = row["finished_at"] or row["claimed_at"]
        entries.append(TraceEntry(at=at, source="claim", what="StepRun", actor=row["owner"], detail=_claim_detail(row)))
    for row in await _rows(pool, _ROLLOUTS, correlation_id):
        versions = f"{row['from_version'] or '-'} → {row['to_version'] or '-'}"
        detail = f"{row['action']} {row['app']} ring {row['ring']} {row['target']} ({row['plane']}): {versions}"
        entries.append(
            TraceEntry(
                at=row["at"],
                source="rollout",
                kind="DeploymentTask",
                name=row["task"],
                what=str(row["action"]).capitalize(),
                detail=f"{detail}, {row['changed']} changed",
            )
        )
    return entries
