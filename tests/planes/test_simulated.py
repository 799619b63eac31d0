"""The simulated plane: seeding, ring-wide apply and rollback, aggregate health with failure rates,
per-device drift and repair, and idempotency by key."""

from __future__ import annotations

import pytest

from controller.planes import fleet
from controller.planes.base import PlaneError, TargetRef
from controller.planes.simulated import SimulatedPlane
from controller.storage.db import Pool


def device(app: str, ring: int, index: int) -> TargetRef:
    return TargetRef("simulated", app, ring, address=fleet.device_address(app, ring, index))


async def test_the_sql_draw_matches_the_python_draw(db_pool: Pool) -> None:
    query = "SELECT " + fleet.DRAW_SQL.format(seed="%s", address="%s", version="%s") + " AS v"
    async with db_pool.connection() as conn:
        for address in ("a", "sim-web-r4-000001", "x" * 40):
            row = await (await conn.execute(query, ("s", address, "1.5.0"))).fetchone()
            assert row is not None
            assert row["v"] == pytest.approx(fleet.draw("s", address, "1.5.0"), abs=1e-12)
            assert 0 <= row["v"] < 1


async def test_seeding_creates_devices_per_ring_once(db_pool: Pool, simulated: SimulatedPlane) -> None:
    assert await fleet.seed_fleet(db_pool, "web", {0: 3, 2: 5}, "1.4.1", artifact="reg/web") == 8
    assert await fleet.seed_fleet(db_pool, "web", {0: 3, 2: 5}, "1.4.1") == 0
    targets = await simulated.targets("web", 2)
    assert [t.address for t in targets] == [fleet.device_address("web", 2, i) for i in range(5)]
    observations = await simulated.observe(targets[:2])
    assert [o.version for o in observations] == ["1.4.1", "1.4.1"]
    assert observations[0].image == "reg/web:1.4.1"
    assert observations[0].config_sha256 == fleet.default_config_sha256("web")
    assert all(o.present and o.available and o.updated for o in observations)


async def test_seeding_rejects_a_ring_out_of_range(db_pool: Pool) -> None:
    with pytest.raises(ValueError, match="out of range"):
        await fleet.seed_fleet(db_pool, "web", {5: 1}, "1.0.0")


async def test_apply_ring_updates_every_device_once_per_key(db_pool: Pool, simulated: SimulatedPlane) -> None:
    await fleet.seed_fleet(db_pool, "web", {1: 50, 2: 7}, "1.4.1")
    result = await simulated.apply_ring("web", 1, "1.5.0", "corr-1/deploy/ring-1")
    assert (result.targets, result.changed, result.replayed) == (50, 50, False)
    again = await simulated.apply_ring("web", 1, "1.5.0", "corr-1/deploy/ring-1")
    assert (again.targets, again.changed, again.replayed) == (50, 50, True)
    other_key = await simulated.apply_ring("web", 1, "1.5.0", "corr-2/deploy/ring-1")
    assert (other_key.changed, other_key.replayed) == (0, False)
    health = await simulated.health("web", 1, "1.5.0")
    assert (health.targets, health.updated, health.healthy, health.failed) == (50, 50, 50, 0)
    assert health.success_rate == 1.0
    untouched = await simulated.health("web", 2, "1.5.0")
    assert (untouched.targets, untouched.updated) == (7, 0)


async def test_failure_rates_fail_a_deterministic_share_of_devices(db_pool: Pool, simulated: SimulatedPlane) -> None:
    await fleet.seed_fleet(db_pool, "web", {1: 400}, "1.4.1")
    await fleet.set_failure_rate(db_pool, "web", 1, 0.25, version="1.5.0")
    await simulated.apply_ring("web", 1, "1.5.0", "c/deploy")
    health = await simulated.health("web", 1, "1.5.0")
    expected_failed = sum(
        fleet.draw(fleet.DEFAULT_SEED, fleet.device_address("web", 1, i), "1.5.0") < 0.25 for i in range(400)
    )
    assert health.failed == expected_failed
    assert 60 < health.failed < 140  # about a quarter
    assert health.healthy + health.failed == health.updated == 400
    failing = await simulated.failing_targets("web", 1, "1.5.0", limit=1000)
    assert len(failing) == expected_failed
    observed = await simulated.observe(failing[:1])
    assert observed[0].present
    assert not observed[0].available
    assert observed[0].unavailable_since is not None
    # The old version is not affected by a version-specific rate; an any-version rate affects all.
    rolled = await simulated.rollback_ring("web", 1, "c/rollback")
    assert (rolled.targets, rolled.changed) == (400, 400)
    back = await simulated.health("web", 1, "1.4.1")
    assert (back.updated, back.failed) == (400, 0)
    await fleet.set_failure_rate(db_pool, "web", 1, 1.0)
    assert (await simulated.health("web", 1, "1.4.1")).healthy == 0


async def test_rollback_ring_does_not_toggle_back(db_pool: Pool, simulated: SimulatedPlane) -> None:
    await fleet.seed_fleet(db_pool, "web", {0: 4}, "1.4.1")
    await simulated.apply_ring("web", 0, "1.5.0", "c/deploy")
    assert (await simulated.rollback_ring("web", 0, "c/rollback-1")).changed == 4
    assert (await simulated.rollback_ring("web", 0, "c/rollback-2")).changed == 0
    assert (await simulated.health("web", 0, "1.4.1")).healthy == 4


async def test_the_failure_rate_must_be_a_fraction(db_pool: Pool) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        await fleet.set_failure_rate(db_pool, "web", 1, 1.5)


async def test_health_of_an_empty_ring(simulated: SimulatedPlane) -> None:
    health = await simulated.health("nothing", 3, "1.0.0")
    assert (health.targets, health.updated, health.healthy, health.failed) == (0, 0, 0, 0)
    assert health.success_rate is None


async def test_per_device_apply_and_rollback(db_pool: Pool, simulated: SimulatedPlane) -> None:
    await fleet.seed_fleet(db_pool, "web", {0: 2}, "1.4.1")
    target = device("web", 0, 0)
    applied = await simulated.apply(target, "1.5.0", "reg/web", "c/apply/0")
    assert (applied.changed, applied.previous_version, applied.replayed) == (True, "1.4.1", False)
    replay = await simulated.apply(target, "1.5.0", "reg/web", "c/apply/0")
    assert (replay.changed, replay.previous_version, replay.replayed) == (True, "1.4.1", True)
    same = await simulated.apply(target, "1.5.0", None, "c/apply/again")
    assert (same.changed, same.previous_version) == (False, "1.4.1")
    [observed] = await simulated.observe([target])
    assert (observed.version, observed.image) == ("1.5.0", "reg/web:1.5.0")
    rolled = await simulated.rollback(target, "c/rollback/0")
    assert (rolled.changed, rolled.previous_version) == (True, "1.5.0")
    assert not (await simulated.rollback(target, "c/rollback/1")).changed
    with pytest.raises(PlaneError, match="No previous version") as raised:
        await simulated.rollback(device("web", 0, 1), "c/rollback/x")
    assert raised.value.transient is False


async def test_unknown_devices_and_bad_targets(simulated: SimulatedPlane) -> None:
    ghost = TargetRef("simulated", "web", 0, address="nowhere")
    [observed] = await simulated.observe([ghost])
    assert not observed.present
    assert "No such" in observed.detail
    with pytest.raises(PlaneError, match="No simulated device") as raised:
        await simulated.apply(ghost, "1.0.0", None, "c/x")
    assert raised.value.transient is False
    # The failed call gave its claim back: a retry with the same key acts (and fails) again.
    with pytest.raises(PlaneError, match="No simulated device"):
        await simulated.apply(ghost, "1.0.0", None, "c/x")
    with pytest.raises(PlaneError, match="no device address"):
        await simulated.restart(TargetRef("simulated", "web", 0, namespace="ns", name="web"), "c/y")


async def test_drift_is_observed_and_repaired(db_pool: Pool, simulated: SimulatedPlane) -> None:
    await fleet.seed_fleet(db_pool, "web", {0: 3}, "1.4.1")
    config, down, missing = device("web", 0, 0), device("web", 0, 1), device("web", 0, 2)
    assert await fleet.inject_drift(db_pool, "web", str(config.address), config_sha256="0" * 64)
    assert await fleet.inject_drift(db_pool, "web", str(down.address), healthy=False)
    assert await fleet.inject_drift(db_pool, "web", str(missing.address), installed=False)
    assert not await fleet.inject_drift(db_pool, "web", "nowhere", healthy=False)

    seen = await simulated.observe([config, down, missing])
    assert seen[0].config_sha256 == "0" * 64
    assert seen[0].available
    assert seen[1].present
    assert not seen[1].available
    assert seen[1].unavailable_since is not None
    assert not seen[2].present
    assert "no install" in seen[2].detail

    assert (await simulated.reapply_config(config, "c/config")).changed
    assert not (await simulated.reapply_config(config, "c/config-2")).changed
    assert (await simulated.restart(down, "c/restart")).changed
    assert (await simulated.install(missing, "c/install")).changed
    assert not (await simulated.install(missing, "c/install-2")).changed

    healed = await simulated.observe([config, down, missing])
    assert healed[0].config_sha256 == fleet.default_config_sha256("web")
    assert all(o.present and o.available for o in healed)
    assert (await simulated.health("web", 0, "1.4.1")).healthy == 3


async def test_a_device_version_changed_behind_our_back_is_seen(db_pool: Pool, simulated: SimulatedPlane) -> None:
    await fleet.seed_fleet(db_pool, "web", {0: 1}, "1.4.1")
    await fleet.inject_drift(db_pool, "web", fleet.device_address("web", 0, 0), version="0.9.0")
    [observed] = await simulated.observe([device("web", 0, 0)])
    assert observed.version == "0.9.0"
    health = await simulated.health("web", 0, "1.4.1")
    assert (health.targets, health.updated) == (1, 0)
