"""SIMULATOR: the simulated device fleet in PostgreSQL (tables `sim_devices`, `sim_failure_rates`).

No real machine stands behind a device. Demos, tests and `bench/` seed a fleet with `seed_fleet`,
inject failures with `set_failure_rate` (deterministic: a device fails a version when its `draw`, a
hash of seed, address and version, is below the rate) and drift with `inject_drift`. The simulated
plane (controller/planes/simulated.py) reads and writes the same tables.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from controller.planes.manifests import config_hash
from controller.storage.db import Pool

#: Seed of the deterministic failure draw, unless a plane or a fleet is given another.
DEFAULT_SEED = "ringpilot-simulator"

#: SQL twin of `draw()`: the first 32 bits of md5(seed/address/version) as a fraction of 2^32.
DRAW_SQL = (
    "(('x' || lpad(substr(md5({seed} || '/' || {address} || '/' || {version}), 1, 8), 16, '0'))"
    "::bit(64)::bigint::float8 / 4294967296.0)"
)


def draw(seed: str, address: str, version: str) -> float:
    """The device's deterministic number in [0, 1) for a version; it fails when below the failure rate."""
    digest = hashlib.md5(f"{seed}/{address}/{version}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[:8], 16) / 2**32


def device_address(app: str, ring: int, index: int) -> str:
    """Address of the `index`-th seeded device of an app in a ring, e.g. `sim-web-r4-000042`."""
    return f"sim-{app}-r{ring}-{index:06d}"


def default_config_sha256(app: str) -> str:
    """Config hash seeded devices start with (any stable value will do for a simulator)."""
    return config_hash({"app": app, "simulated": "true"})


_SEED = f"""
INSERT INTO sim_devices (app, ring, address, version, artifact, config_sha256, applied_config_sha256, draw)
SELECT %(app)s, %(ring)s, a.address, %(version)s, %(artifact)s, %(config)s, %(config)s,
       {DRAW_SQL.format(seed="%(seed)s", address="a.address", version="%(version)s")}
FROM (SELECT 'sim-' || %(app)s || '-r' || %(ring)s || '-' || lpad(i::text, 6, '0') AS address
      FROM generate_series(0, %(count)s - 1) AS i) AS a
ON CONFLICT (app, address) DO NOTHING
"""


async def seed_fleet(
    pool: Pool,
    app: str,
    sizes: Mapping[int, int],
    version: str,
    *,
    artifact: str | None = None,
    config_sha256: str | None = None,
    seed: str = DEFAULT_SEED,
) -> int:
    """Create `sizes[ring]` devices per ring running `version` (set-based); existing ones are kept.

    Returns how many devices were created. Addresses are `device_address(app, ring, i)`.
    """
    config = config_sha256 or default_config_sha256(app)
    created = 0
    async with pool.connection() as conn:
        for ring, count in sorted(sizes.items()):
            if not 0 <= ring <= 4 or count < 0:
                raise ValueError(f"Ring {ring} with {count} devices is out of range (rings 0-4, count >= 0)")
            params = {
                "app": app,
                "ring": ring,
                "count": count,
                "version": version,
                "artifact": artifact,
                "config": config,
                "seed": seed,
            }
            cursor = await conn.execute(_SEED, params)
            created += cursor.rowcount
    return created


_SET_RATE = """
INSERT INTO sim_failure_rates (app, ring, version, rate) VALUES (%s, %s, %s, %s)
ON CONFLICT (app, ring, version) DO UPDATE SET rate = EXCLUDED.rate, updated_at = now()
"""


async def set_failure_rate(pool: Pool, app: str, ring: int, rate: float, version: str | None = None) -> None:
    """Make a fraction `rate` (0-1) of the app's devices in `ring` fail, for `version` or any version.

    A version-specific rate wins over the any-version one. Which devices fail is deterministic.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"Failure rate {rate} is not between 0 and 1")
    async with pool.connection() as conn:
        await conn.execute(_SET_RATE, (app, ring, version or "", rate))


_INJECT = """
UPDATE sim_devices SET
    version = coalesce(%(version)s, version),
    config_sha256 = coalesce(%(config)s, config_sha256),
    installed = coalesce(%(installed)s, installed),
    healthy = coalesce(%(healthy)s, healthy),
    unavailable_since = CASE WHEN %(healthy)s IS FALSE THEN coalesce(unavailable_since, now())
                             WHEN %(healthy)s IS TRUE THEN NULL ELSE unavailable_since END,
    updated_at = now()
WHERE app = %(app)s AND address = %(address)s
"""


async def inject_drift(
    pool: Pool,
    app: str,
    address: str,
    *,
    version: str | None = None,
    config_sha256: str | None = None,
    installed: bool | None = None,
    healthy: bool | None = None,
) -> bool:
    """Change a device behind the plane's back (someone else's change): its running version, its
    config, whether it is installed, whether it is up. False if there is no such device."""
    params = {
        "app": app,
        "address": address,
        "version": version,
        "config": config_sha256,
        "installed": installed,
        "healthy": healthy,
    }
    async with pool.connection() as conn:
        cursor = await conn.execute(_INJECT, params)
        return cursor.rowcount == 1
