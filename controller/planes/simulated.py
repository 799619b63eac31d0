"""SIMULATOR: the simulated execution plane, a device fleet in PostgreSQL for demos and scale benchmarks.

Nothing here touches a real machine: a device is a row of `sim_devices` (controller/planes/fleet.py).
It is an `ExecutionPlane` that overrides the ring-wide calls: `apply_ring` and `rollback_ring` update a
whole ring in one statement and `health` is one aggregate query, so a 100,000-device ring stays cheap.
A device fails when its deterministic draw is below the injected failure rate (`set_failure_rate`).
"""

from __future__ import annotations

import logging
from typing import Any

from controller.planes.base import (
    ActionResult,
    ExecutionPlane,
    Observation,
    PlaneError,
    RingHealth,
    RingResult,
    TargetRef,
)
from controller.planes.fleet import DEFAULT_SEED, DRAW_SQL
from controller.planes.idempotency import DEFAULT_STALE_CLAIM_SECONDS, KeyedRunner, claim_key, correlation_of
from controller.storage.db import Pool

logger = logging.getLogger(__name__)


# The failure rate of a device's current version: a version-specific rate, else the any-version one.
_RATE = """
coalesce((SELECT f.rate FROM sim_failure_rates f
          WHERE f.app = d.app AND f.ring = d.ring AND f.version IN (d.version, '')
          ORDER BY f.version = '' LIMIT 1), 0)
"""
_AVAILABLE = f"(d.installed AND d.healthy AND d.draw >= {_RATE})"
_OBSERVE = f"""
SELECT t.app, t.address, d.ring, d.version, d.artifact, d.config_sha256, d.installed,
       {_AVAILABLE} AS available, d.unavailable_since, d.updated_at
FROM unnest(%s::text[], %s::text[]) AS t(app, address)
LEFT JOIN sim_devices d ON d.app = t.app AND d.address = t.address
"""
_HEALTH = """
WITH r AS (
    SELECT coalesce((SELECT f.rate FROM sim_failure_rates f
                     WHERE f.app = %(app)s AND f.ring = %(ring)s AND f.version IN (%(version)s, '')
                     ORDER BY f.version = '' LIMIT 1), 0) AS rate
)
SELECT count(*) AS targets,
       count(*) FILTER (WHERE d.installed AND d.version = %(version)s) AS updated,
       count(*) FILTER (WHERE d.installed AND d.version = %(version)s AND d.healthy AND d.draw >= r.rate)
           AS healthy
FROM sim_devices d CROSS JOIN r WHERE d.app = %(app)s AND d.ring = %(ring)s
"""
_NEW_DRAW = DRAW_SQL.format(seed="%(seed)s", address="d.address", version="%(version)s")
_APPLY = f"""
UPDATE sim_devices d SET
    previous_version = CASE WHEN d.version <> %(version)s THEN d.version ELSE d.previous_version END,
    version = %(version)s, artifact = coalesce(%(artifact)s, d.artifact), draw = {_NEW_DRAW},
    installed = true, healthy = true, unavailable_since = NULL, updated_at = now()
WHERE d.app = %(app)s AND {{where}} AND (d.version <> %(version)s OR NOT d.installed)
"""
_ROLLBACK = f"""
UPDATE sim_devices d SET
    version = d.previous_version,
    draw = {DRAW_SQL.format(seed="%(seed)s", address="d.address", version="d.previous_version")},
    healthy = true, unavailable_since = NULL, updated_at = now()
WHERE d.app = %(app)s AND {{where}} AND d.previous_version IS NOT NULL AND d.version <> d.previous_version
"""
_DEVICE = (
    "SELECT version, previous_version, installed, config_sha256, applied_config_sha256 FROM sim_devices "
    "WHERE app = %(app)s AND address = %(address)s FOR UPDATE"
)
_COUNT = "SELECT count(*) AS n FROM sim_devices WHERE app = %(app)s AND ring = %(ring)s"


class SimulatedPlane(ExecutionPlane):
    """SIMULATOR: an `ExecutionPlane` over the `sim_devices` table; no real device is touched."""

    name = "simulated"

    def __init__(
        self,
        pool: Pool,
        *,
        seed: str = DEFAULT_SEED,
        owner: str | None = None,
        stale_claim_seconds: float = DEFAULT_STALE_CLAIM_SECONDS,
    ) -> None:
        self.pool = pool
        self.seed = seed
        self.runner = KeyedRunner(pool, owner=owner, stale_claim_seconds=stale_claim_seconds)

    # ---- reads -------------------------------------------------------------------------------

    async def targets(self, app: str, ring: int) -> list[TargetRef]:
        query = "SELECT address FROM sim_devices WHERE app = %s AND ring = %s ORDER BY address"
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(query, (app, ring))).fetchall()
        return [TargetRef(self.name, app, ring, address=row["address"]) for row in rows]

    async def observe(self, targets: list[TargetRef]) -> list[Observation]:
        """One query for any number of targets."""
        addresses = [self._address(t) for t in targets]
        async with self.pool.connection() as conn:
            cursor = await conn.execute(_OBSERVE, ([t.app for t in targets], addresses))
            rows = {(r["app"], r["address"]): r for r in await cursor.fetchall()}
        return [self._observation(t, rows[(t.app, t.address)]) for t in targets]

    @staticmethod
    def _observation(target: TargetRef, row: dict[str, Any]) -> Observation:
        if row["version"] is None:
            return Observation(target=target, present=False, detail="No such simulated device")
        if not row["installed"]:
            return Observation(target=target, present=False, detail="Simulated device has no install")
        available = bool(row["available"])
        artifact = row["artifact"]
        return Observation(
            target=target,
            present=True,
            version=row["version"],
            image=f"{artifact}:{row['version']}" if artifact else None,
            config_sha256=row["config_sha256"],
            available=available,
            replicas=1,
            ready_replicas=int(available),
            updated=True,
            unavailable_since=None if available else (row["unavailable_since"] or row["updated_at"]),
            detail="" if available else "Simulated device is failing",
        )

    async def health(self, app: str, ring: int, version: str) -> RingHealth:
        """One aggregate query; `observations` stays empty (use `failing_targets` for names)."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(_HEALTH, {"app": app, "ring": ring, "version": version})
            row = await cursor.fetchone()
        assert row is not None  # an aggregate always returns a row
        updated, healthy = int(row["updated"]), int(row["healthy"])
        return RingHealth(ring, int(row["targets"]), updated, healthy, updated - healthy)

    async def failing_targets(self, app: str, ring: int, version: str, limit: int = 100) -> list[TargetRef]:
        """Devices that run `version` and are not available, at most `limit`, by address."""
        query = f"""SELECT d.address FROM sim_devices d
                    WHERE d.app = %s AND d.ring = %s AND d.version = %s AND NOT {_AVAILABLE}
                    ORDER BY d.address LIMIT %s"""
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(query, (app, ring, version, limit))).fetchall()
        return [TargetRef(self.name, app, ring, address=row["address"]) for row in rows]

    # ---- ring-wide writes --------------------------------------------------------------------

    async def apply_ring(self, app: str, ring: int, version: str, key: str, artifact: str | None = None) -> RingResult:
        """Run `version` on every device of the app in the ring: one UPDATE, once per key."""
        params = {"app": app, "ring": ring, "version": version, "artifact": artifact, "seed": self.seed}
        return await self._ring_action("apply_ring", app, ring, key, _APPLY.format(where="d.ring = %(ring)s"), params)

    async def rollback_ring(self, app: str, ring: int, key: str, targets: list[TargetRef] | None = None) -> RingResult:
        """Restore every device's previous version in the ring: one UPDATE, once per key (named devices: one
        rollback each)."""
        if targets is not None:
            return await super().rollback_ring(app, ring, key, targets)
        params = {"app": app, "ring": ring, "seed": self.seed}
        sql = _ROLLBACK.format(where="d.ring = %(ring)s")
        return await self._ring_action("rollback_ring", app, ring, key, sql, params)

    async def _ring_action(
        self, operation: str, app: str, ring: int, key: str, sql: str, params: dict[str, Any]
    ) -> RingResult:
        async def act() -> dict[str, Any]:
            async with self.pool.connection() as conn:
                changed = (await conn.execute(sql, params)).rowcount
                total = await (await conn.execute(_COUNT, params)).fetchone()
            logger.info("Simulated %s changed %d devices of %r in ring %d", operation, changed, app, ring)
            return {"targets": int(total["n"]) if total else 0, "changed": changed}

        outcome, replayed = await self.runner.run(
            claim_key(self.name, operation, f"{app}/ring-{ring}", key), correlation_of(key), act
        )
        targets, changed = int(outcome["targets"]), int(outcome["changed"])
        return RingResult(app, ring, targets, changed, whole_ring=True, replayed=replayed)

    # ---- per-target writes -------------------------------------------------------------------

    def _address(self, target: TargetRef) -> str:
        if not target.address:
            raise PlaneError(f"Target {target.key!r} has no device address", transient=False)
        return target.address

    async def _device(self, target: TargetRef, conn: Any) -> dict[str, Any]:
        cursor = await conn.execute(_DEVICE, {"app": target.app, "address": self._address(target)})
        row: dict[str, Any] | None = await cursor.fetchone()
        if row is None:
            raise PlaneError(f"No simulated device {target.address!r} for app {target.app!r}", transient=False)
        return row

    async def apply(self, target: TargetRef, version: str, artifact: str | None, key: str) -> ActionResult:
        self._address(target)

        async def act() -> ActionResult:
            params = {
                "app": target.app,
                "address": target.address,
                "version": version,
                "artifact": artifact,
                "seed": self.seed,
            }
            async with self.pool.connection() as conn, conn.transaction():
                before = await self._device(target, conn)
                changed = (await conn.execute(_APPLY.format(where="d.address = %(address)s"), params)).rowcount
            if not changed:
                return ActionResult(target, False, f"Already runs {version}", before["previous_version"])
            return ActionResult(target, True, f"Updated {before['version']} to {version}", before["version"])

        return await self.runner.run_action(self.name, "apply", target, key, act)

    async def rollback(self, target: TargetRef, key: str) -> ActionResult:
        self._address(target)

        async def act() -> ActionResult:
            params = {"app": target.app, "address": target.address, "seed": self.seed}
            async with self.pool.connection() as conn, conn.transaction():
                before = await self._device(target, conn)
                if before["previous_version"] is None:
                    raise PlaneError(f"No previous version recorded for device {target.address!r}", transient=False)
                sql = _ROLLBACK.format(where="d.address = %(address)s")
                changed = (await conn.execute(sql, params)).rowcount
            restored = before["previous_version"]
            if not changed:
                return ActionResult(target, False, f"Already runs {restored}")
            return ActionResult(target, True, f"Rolled back {before['version']} to {restored}", before["version"])

        return await self.runner.run_action(self.name, "rollback", target, key, act)

    async def _set(self, target: TargetRef, key: str, operation: str, sql: str, done: str, noop: str) -> ActionResult:
        """A per-device UPDATE guarded by `WHERE` so it changes only what needs changing."""
        self._address(target)

        async def act() -> ActionResult:
            async with self.pool.connection() as conn, conn.transaction():
                await self._device(target, conn)
                changed = (await conn.execute(sql, {"app": target.app, "address": target.address})).rowcount
            return ActionResult(target, bool(changed), done if changed else noop)

        return await self.runner.run_action(self.name, operation, target, key, act)

    async def install(self, target: TargetRef, key: str) -> ActionResult:
        sql = """UPDATE sim_devices SET installed = true, healthy = true, unavailable_since = NULL,
                 updated_at = now() WHERE app = %(app)s AND address = %(address)s AND NOT installed"""
        return await self._set(target, key, "install", sql, "Reinstalled the device", "Already installed")

    async def restart(self, target: TargetRef, key: str) -> ActionResult:
        sql = """UPDATE sim_devices SET healthy = true, unavailable_since = NULL, restarts = restarts + 1,
                 updated_at = now() WHERE app = %(app)s AND address = %(address)s"""
        return await self._set(target, key, "restart", sql, "Restarted the device", "Restarted the device")

    async def reapply_config(self, target: TargetRef, key: str) -> ActionResult:
        sql = """UPDATE sim_devices SET config_sha256 = applied_config_sha256, updated_at = now()
                 WHERE app = %(app)s AND address = %(address)s
                   AND config_sha256 IS DISTINCT FROM applied_config_sha256"""
        return await self._set(
            target,
            key,
            "reapply_config",
            sql,
            "Restored the recorded configuration",
            "Configuration already matches",
        )
