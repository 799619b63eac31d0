"""Rollout history: which targets a task's Deploy and Rollback steps changed (table `rollout_history`).

Written by the worker after each ring-wide plane call (controller/orchestration/execution.py): one row
per target, or one row (`target = "*"`) for a ring the plane changed in one statement. Read by the
automatic rollback (only what this task changed is restored) and by ValidateIntent and the
`action: Rollback` step (the targets whose latest recorded change deployed the version to withdraw).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from controller.planes.base import ActionResult, RingResult, TargetRef
from controller.storage.db import Pool

WHOLE_RING = "*"

#: The (from_version, to_version) of the row for one target's action, or for the whole ring (None).
Versions = Callable[[ActionResult | None], tuple[str | None, str | None]]


class HistoryRow(BaseModel):
    """One row of `rollout_history`."""

    model_config = ConfigDict(frozen=True)

    correlation_id: str
    task: str
    task_uid: str
    app: str
    plane: str
    ring: int
    target: str
    namespace: str | None = None
    name: str | None = None
    address: str | None = None
    action: Literal["deploy", "rollback"]
    from_version: str | None = None
    to_version: str | None = None
    changed: int = 0
    step_key: str

    def target_ref(self) -> TargetRef:
        return TargetRef(self.plane, self.app, self.ring, self.namespace, self.name, self.address)

    @property
    def whole_ring(self) -> bool:
        return self.target == WHOLE_RING


@dataclass(frozen=True)
class TaskRef:
    """Who is acting: the task's correlation ID, `namespace/name` and uid."""

    correlation_id: str
    task: str
    uid: str


_COLUMNS = (
    "correlation_id, task, task_uid, app, plane, ring, target, namespace, name, address, action, "
    "from_version, to_version, changed, step_key"
)
_INSERT = f"""
INSERT INTO rollout_history ({_COLUMNS})
VALUES (%(correlation_id)s, %(task)s, %(task_uid)s, %(app)s, %(plane)s, %(ring)s, %(target)s, %(namespace)s,
        %(name)s, %(address)s, %(action)s, %(from_version)s, %(to_version)s, %(changed)s, %(step_key)s)
ON CONFLICT (step_key, target) DO NOTHING
"""
_CHANGED_BY_TASK = f"""
SELECT {_COLUMNS} FROM rollout_history
WHERE correlation_id = %s AND task_uid = %s AND action = 'deploy' AND ring = %s
  AND changed > 0 AND from_version IS DISTINCT FROM to_version
ORDER BY target
"""
_LATEST_PER_TARGET = f"""
SELECT * FROM (
    SELECT DISTINCT ON (target) {_COLUMNS} FROM rollout_history
    WHERE app = %(app)s AND plane = %(plane)s AND ring = ANY(%(rings)s)
    ORDER BY target, id DESC
) latest
WHERE action = 'deploy' AND to_version = %(version)s AND changed > 0
  AND from_version IS DISTINCT FROM to_version
ORDER BY ring, target
"""


async def record(pool: Pool, rows: list[HistoryRow]) -> None:
    """Append rows; a row already recorded for the same step and target is kept as it was."""
    if not rows:
        return
    async with pool.connection() as conn, conn.cursor() as cursor:
        await cursor.executemany(_INSERT, [row.model_dump() for row in rows])


def row_for(
    who: TaskRef,
    target: TargetRef,
    action: Literal["deploy", "rollback"],
    step_key: str,
    *,
    from_version: str | None,
    to_version: str | None,
    changed: int,
    whole_ring: bool = False,
) -> HistoryRow:
    """One row: for `target`, or for every target of its ring (`whole_ring`; only plane, app and ring count)."""
    return HistoryRow(
        correlation_id=who.correlation_id,
        task=who.task,
        task_uid=who.uid,
        app=target.app,
        plane=target.plane,
        ring=target.ring,
        target=WHOLE_RING if whole_ring else target.key,
        namespace=None if whole_ring else target.namespace,
        name=None if whole_ring else target.name,
        address=None if whole_ring else target.address,
        action=action,
        from_version=from_version,
        to_version=to_version,
        changed=changed,
        step_key=step_key,
    )


def rows_for(
    who: TaskRef,
    plane: str,
    result: RingResult,
    action: Literal["deploy", "rollback"],
    step_key: str,
    versions: Versions,
) -> list[HistoryRow]:
    """What a ring-wide call changed: a row per target acted on, or one row for a ring changed at once."""
    if result.whole_ring:
        before, after = versions(None)
        ring = TargetRef(plane, result.app, result.ring)
        return [
            row_for(
                who,
                ring,
                action,
                step_key,
                from_version=before,
                to_version=after,
                changed=result.changed,
                whole_ring=True,
            )
        ]
    rows = []
    for done in result.actions:
        before, after = versions(done)
        rows.append(
            row_for(
                who, done.target, action, step_key, from_version=before, to_version=after, changed=int(done.changed)
            )
        )
    return rows


async def changed_by_task(pool: Pool, correlation_id: str, uid: str, ring: int) -> list[HistoryRow]:
    """What this task's Deploy of `ring` changed: what its automatic rollback must restore."""
    async with pool.connection() as conn:
        rows = await (await conn.execute(_CHANGED_BY_TASK, (correlation_id, uid, ring))).fetchall()
    return [HistoryRow.model_validate(r) for r in rows]


async def deployed_version(pool: Pool, app: str, plane: str, version: str, rings: list[int]) -> list[HistoryRow]:
    """Targets whose latest recorded change deployed `version` over another one (rollback candidates)."""
    params = {"app": app, "plane": plane, "version": version, "rings": rings}
    async with pool.connection() as conn:
        rows = await (await conn.execute(_LATEST_PER_TARGET, params)).fetchall()
    return [HistoryRow.model_validate(r) for r in rows]
