"""What the kubernetes plane recorded about a workload: rows of `plane_manifests` (migrations 0001, 0400).

Every apply, rollback and first sighting (snapshot) of a workload appends one row with the manifest
applied, the image and the image it replaced, and the referenced ConfigMap's data. `rollback` reads
the last apply, `install` the last row of any kind, `reapply_config` the last row with ConfigMap data.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from controller.storage.db import Pool


class RecordAction(StrEnum):
    APPLY = "apply"
    ROLLBACK = "rollback"
    SNAPSHOT = "snapshot"


class ManifestRecord(BaseModel):
    """One row of `plane_manifests`."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    name: str
    app: str
    revision: int = Field(0, description="Increasing over all rows; the newest row of a workload wins")
    action: RecordAction
    manifest: dict[str, Any] = Field(description="The Deployment as applied, without status or server fields")
    image: str | None = Field(None, description="Main container image applied")
    previous_image: str | None = Field(None, description="Main container image it replaced")
    config_map: str | None = Field(None, description="ConfigMap the workload referenced")
    config_data: dict[str, str] | None = Field(None, description="That ConfigMap's data when recorded")
    idempotency_key: str | None = None
    recorded_at: datetime | None = None


_COLUMNS = (
    "namespace, name, app, revision, action, manifest, image, previous_image, config_map, config_data, "
    "idempotency_key, recorded_at"
)
_INSERT_MANY = """
INSERT INTO plane_manifests
    (namespace, name, app, action, manifest, image, previous_image, config_map, config_data, idempotency_key)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
_INSERT = f"{_INSERT_MANY} RETURNING {_COLUMNS}"
_LATEST = f"""
SELECT {_COLUMNS} FROM plane_manifests
WHERE namespace = %s AND name = %s {{extra}}
ORDER BY revision DESC LIMIT 1
"""
_DELETE = "DELETE FROM plane_manifests WHERE namespace = %s AND name = %s AND revision = %s"


def _params(entry: ManifestRecord) -> tuple[Any, ...]:
    return (
        entry.namespace,
        entry.name,
        entry.app,
        entry.action.value,
        Jsonb(entry.manifest),
        entry.image,
        entry.previous_image,
        entry.config_map,
        Jsonb(entry.config_data) if entry.config_data is not None else None,
        entry.idempotency_key,
    )


async def record(pool: Pool, entry: ManifestRecord) -> ManifestRecord:
    """Append `entry` (its revision is assigned here) and return it as stored."""
    async with pool.connection() as conn:
        row = await (await conn.execute(_INSERT, _params(entry))).fetchone()
    return ManifestRecord.model_validate(row)


async def record_many(pool: Pool, entries: list[ManifestRecord]) -> None:
    """Append many rows in one pipelined batch (first-sighting snapshots of a whole observe call)."""
    if not entries:
        return
    async with pool.connection() as conn, conn.cursor() as cursor:
        await cursor.executemany(_INSERT_MANY, [_params(entry) for entry in entries])


async def unrecorded(pool: Pool, workloads: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (namespace, name) pairs among `workloads` that have no row yet: one query for any number."""
    if not workloads:
        return set()
    query = """
    SELECT w.namespace, w.name FROM unnest(%s::text[], %s::text[]) AS w(namespace, name)
    WHERE NOT EXISTS (SELECT 1 FROM plane_manifests p WHERE p.namespace = w.namespace AND p.name = w.name)
    """
    async with pool.connection() as conn:
        cursor = await conn.execute(query, ([w[0] for w in workloads], [w[1] for w in workloads]))
        return {(row["namespace"], row["name"]) for row in await cursor.fetchall()}


async def forget(pool: Pool, entry: ManifestRecord) -> None:
    """Drop a row whose change did not reach the cluster."""
    async with pool.connection() as conn:
        await conn.execute(_DELETE, (entry.namespace, entry.name, entry.revision))


async def _latest(
    pool: Pool, namespace: str, name: str, extra: str, params: tuple[Any, ...] = ()
) -> ManifestRecord | None:
    async with pool.connection() as conn:
        cursor = await conn.execute(_LATEST.format(extra=extra), (namespace, name, *params))
        row = await cursor.fetchone()
    return ManifestRecord.model_validate(row) if row is not None else None


async def latest(pool: Pool, namespace: str, name: str) -> ManifestRecord | None:
    """The newest row of any kind: the manifest last applied to the workload."""
    return await _latest(pool, namespace, name, "")


async def latest_apply(pool: Pool, namespace: str, name: str) -> ManifestRecord | None:
    """The newest apply: its `previous_image` is what a rollback restores."""
    return await _latest(pool, namespace, name, "AND action = %s", (RecordAction.APPLY.value,))


async def latest_config(pool: Pool, namespace: str, name: str) -> ManifestRecord | None:
    """The newest row that recorded ConfigMap data."""
    return await _latest(pool, namespace, name, "AND config_map IS NOT NULL AND config_data IS NOT NULL")


async def history(pool: Pool, namespace: str, name: str) -> list[ManifestRecord]:
    """Every row of a workload, oldest first (for the trace view and tests)."""
    query = f"SELECT {_COLUMNS} FROM plane_manifests WHERE namespace = %s AND name = %s ORDER BY revision"
    async with pool.connection() as conn:
        rows = await (await conn.execute(query, (namespace, name))).fetchall()
    return [ManifestRecord.model_validate(row) for row in rows]
