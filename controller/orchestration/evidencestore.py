"""The evidence store: packs written once to `evidence_packs` (immutable by trigger, migration 0001).

`store` is called by the GenerateEvidence step in the worker; its id is derived from the step, so a
repeated attempt finds the pack already there and returns it instead of writing a second one.
`load` and `verify` recompute the SHA-256 of the stored canonical JSON on every read; a mismatch or a
missing row is tampering, and the DeploymentTask stops with `EvidenceTampered`.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.types.json import Jsonb

from controller.orchestration.evidence import sha256_of
from controller.storage.db import Pool

_NAMESPACE = uuid.UUID("1d0b5d8e-2f8a-4c61-93a4-7e2b9c0d5f14")
_INSERT = """
INSERT INTO evidence_packs (id, correlation_id, task, sha256, body) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (id) DO NOTHING
"""
_SELECT = "SELECT id, sha256, body FROM evidence_packs WHERE id = %s"


class EvidenceTamperedError(Exception):
    """A stored pack no longer matches its hash (or is gone)."""


def pack_id_for(step_key: str) -> str:
    """The pack id of one GenerateEvidence step of one plan (stable across attempts)."""
    return str(uuid.uuid5(_NAMESPACE, step_key))


async def store(pool: Pool, pack_id: str, correlation_id: str, task: str, body: dict[str, Any]) -> str:
    """Write the pack unless a pack with this id exists; return the SHA-256 of the stored pack."""
    digest = sha256_of(body)
    async with pool.connection() as conn:
        await conn.execute(_INSERT, (pack_id, correlation_id, task, digest, Jsonb(body)))
    stored, _ = await load(pool, pack_id)
    return stored


async def load(pool: Pool, pack_id: str, expected_sha256: str | None = None) -> tuple[str, dict[str, Any]]:
    """The pack's hash and body, after checking the body still hashes to the recorded value."""
    async with pool.connection() as conn:
        row = await (await conn.execute(_SELECT, (pack_id,))).fetchone()
    if row is None:
        raise EvidenceTamperedError(f"evidence pack {pack_id} is missing from the evidence store")
    recorded, body = str(row["sha256"]), row["body"]
    actual = sha256_of(body)
    if actual != recorded:
        raise EvidenceTamperedError(
            f"evidence pack {pack_id} hashes to {actual[:16]}, not its recorded sha256 {recorded[:16]}"
        )
    if expected_sha256 is not None and recorded != expected_sha256:
        raise EvidenceTamperedError(
            f"evidence pack {pack_id} is recorded as {recorded[:16]}, the task expects {expected_sha256[:16]}"
        )
    return recorded, body


async def verify(pool: Pool, pack_id: str, expected_sha256: str) -> str | None:
    """None when the pack is intact, else what is wrong with it."""
    try:
        await load(pool, pack_id, expected_sha256)
    except EvidenceTamperedError as error:
        return str(error)
    return None
