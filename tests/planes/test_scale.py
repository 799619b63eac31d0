"""Scale: the simulated plane rolls out and checks a 100,000-device ring with set-based statements."""

from __future__ import annotations

import time

from controller.planes import fleet
from controller.planes.simulated import SimulatedPlane
from controller.storage.db import Pool


async def test_a_hundred_thousand_devices_apply_and_report_health_quickly(
    db_pool: Pool, simulated: SimulatedPlane
) -> None:
    started = time.monotonic()
    assert await fleet.seed_fleet(db_pool, "web", {4: 100_000}, "1.4.1") == 100_000
    seeded = time.monotonic()
    await fleet.set_failure_rate(db_pool, "web", 4, 0.01, version="1.5.0")
    result = await simulated.apply_ring("web", 4, "1.5.0", "bench/deploy/ring-4")
    applied = time.monotonic()
    health = await simulated.health("web", 4, "1.5.0")
    checked = time.monotonic()
    print(f"seed {seeded - started:.2f}s apply {applied - seeded:.2f}s health {checked - applied:.3f}s")
    assert (result.targets, result.changed) == (100_000, 100_000)
    assert (health.targets, health.updated) == (100_000, 100_000)
    assert 800 < health.failed < 1200
    assert checked - applied < 2.0  # one poll interval is far longer; this guards against per-row work
