"""The kubernetes plane against the API emulator, the simulated kubelet and PostgreSQL: batched
observation, drift and outage as observed, apply/rollback, install, restart, config re-apply,
idempotency keys and error classification."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import unquote_plus

import pytest

from controller.api.labels import (
    KUBELET_FAIL_ANNOTATION,
    KUBELET_FAIL_UNTIL_RESTART_ANNOTATION,
    KUBELET_FAIL_VERSION_ANNOTATION,
)
from controller.devkit.seeding import REGISTRY, SampleApp, configmap_manifest, deployment_manifest
from controller.planes import recording
from controller.planes.base import Observation, PlaneError, TargetRef
from controller.planes.kubernetes import app_selector
from controller.planes.manifests import RESTARTED_AT, config_hash
from controller.storage.db import Pool
from tests.planes.conftest import Cluster

RING0 = "ring-0-lab"
WEB0 = TargetRef("kubernetes", "web", 0, namespace=RING0, name="web")
SEEDED_DATA = configmap_manifest(SampleApp("web"), RING0)["data"]


def image(cluster: Cluster, target: TargetRef = WEB0) -> str:
    spec = cluster.deployment(str(target.namespace), str(target.name))["spec"]["template"]["spec"]
    return str(spec["containers"][0]["image"])


async def observe_one(cluster: Cluster, target: TargetRef = WEB0) -> Observation:
    [observation] = await cluster.plane.observe([target])
    return observation


async def wait_observed(
    cluster: Cluster, predicate: Any, target: TargetRef = WEB0, what: str = "observation"
) -> Observation:
    deadline = time.monotonic() + 10
    while True:
        observation = await observe_one(cluster, target)
        if predicate(observation):
            return observation
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out waiting for {what}: {observation}")
        await asyncio.sleep(0.05)


def annotate(cluster: Cluster, target: TargetRef, annotations: dict[str, str | None]) -> None:
    cluster.apps.patch_namespaced_deployment(
        target.name,
        target.namespace,
        {"metadata": {"annotations": annotations}},
        _content_type="application/merge-patch+json",
    )


def test_app_selectors_use_equality_for_one_app_and_a_set_for_several() -> None:
    assert app_selector(["web"]) == "app.kubernetes.io/name=web"
    assert app_selector(["web", "payments", "web"]) == "app.kubernetes.io/name in (payments,web)"


async def test_targets_are_the_app_deployments_in_the_ring_namespaces(cluster: Cluster) -> None:
    targets = await cluster.plane.targets("web", 2)
    assert targets == [TargetRef("kubernetes", "web", 2, namespace="ring-2-pilot", name="web")]
    assert await cluster.plane.targets("web", 9) == []


async def test_observe_batches_calls_by_namespace_not_by_target(cluster: Cluster) -> None:
    # 3 extra ring-2 namespaces, each with 6 web Deployments: 18 + 1 targets over 4 namespaces.
    for n in range(3):
        namespace = f"ring-2-extra-{n}"
        cluster.core.create_namespace({"metadata": {"name": namespace, "labels": {"ringpilot.dev/ring": "2"}}})
        cluster.core.create_namespaced_config_map(namespace, configmap_manifest(SampleApp("web"), namespace))
        for i in range(6):
            manifest = deployment_manifest(SampleApp("web"), namespace)
            manifest["metadata"]["name"] = f"web-{i}"
            cluster.apps.create_namespaced_deployment(namespace, manifest)
    cluster.log.clear()
    targets = await cluster.plane.targets("web", 2)
    assert len(targets) == 19
    assert len(cluster.log.calls) == 1 + 4  # namespaces, then one Deployment list per namespace

    cluster.log.clear()
    observations = await cluster.plane.observe(targets)
    assert len(cluster.log.calls) == 2 * 4  # a Deployment list and a ConfigMap list per namespace
    assert cluster.log.count("GET", "/deployments?") == 4
    assert cluster.log.count("GET", "/configmaps") == 4
    assert [o.target for o in observations] == targets
    assert all(o.present and o.version == "1.4.1" for o in observations)
    assert {o.config_sha256 for o in observations} == {config_hash(SEEDED_DATA)}

    cluster.log.clear()
    half = await cluster.plane.observe(targets[::2])
    assert len(cluster.log.calls) == 2 * 4
    assert len(half) == 10

    cluster.log.clear()
    both = await cluster.plane.observe([WEB0, TargetRef("kubernetes", "payments", 0, namespace=RING0, name="payments")])
    assert [o.target.app for o in both] == ["web", "payments"]
    assert len(cluster.log.calls) == 2
    assert "labelSelector=app.kubernetes.io/name in (payments,web)" in unquote_plus(cluster.log.calls[0][1])


async def test_missing_workloads_and_namespaces_are_observed_as_not_present(cluster: Cluster) -> None:
    ghost = TargetRef("kubernetes", "web", 0, namespace=RING0, name="ghost")
    gone = TargetRef("kubernetes", "web", 0, namespace="no-such-namespace", name="web")
    seen = await cluster.plane.observe([ghost, gone])
    assert [o.present for o in seen] == [False, False]
    assert await cluster.plane.observe([]) == []
    with pytest.raises(PlaneError, match="no namespace and name"):
        await cluster.plane.observe([TargetRef("kubernetes", "web", 0, address="x")])


async def test_version_config_and_outage_are_observed(cluster: Cluster) -> None:
    seen = await wait_observed(cluster, lambda o: o.available, what="web available")
    assert (seen.version, seen.config_map, seen.config_sha256) == (
        "1.4.1",
        "web-config",
        config_hash(SEEDED_DATA),
    )
    assert (seen.replicas, seen.ready_replicas, seen.updated, seen.unavailable_since) == (2, 2, True, None)

    cluster.core.patch_namespaced_config_map("web-config", RING0, {"data": {"LOG_LEVEL": "debug"}})
    drifted = await observe_one(cluster)
    assert drifted.config_sha256 == config_hash({**SEEDED_DATA, "LOG_LEVEL": "debug"})

    cluster.apps.patch_namespaced_deployment(
        "web",
        RING0,
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "elsewhere/web:0.9"}]}}}},
    )
    assert (await observe_one(cluster)).version == "0.9"

    annotate(cluster, WEB0, {KUBELET_FAIL_ANNOTATION: "CrashLoop"})
    down = await wait_observed(cluster, lambda o: not o.available, what="web down")
    assert down.present
    assert down.ready_replicas == 0
    assert down.unavailable_since is not None
    assert "CrashLoopBackOff" in down.detail

    cluster.core.delete_namespaced_config_map("web-config", RING0)
    assert (await observe_one(cluster)).config_sha256 is None


async def test_apply_patches_the_image_and_rollback_restores_it(cluster: Cluster, db_pool: Pool) -> None:
    cluster.log.clear()
    result = await cluster.plane.apply(WEB0, "1.5.0", None, "corr-1/deploy/ring-0")
    assert (result.changed, result.previous_version, result.replayed) == (True, "1.4.1", False)
    assert image(cluster) == f"{REGISTRY}/web:1.5.0"
    assert cluster.log.count("PATCH") == 1

    rows = await recording.history(db_pool, RING0, "web")
    assert [(r.action, r.image, r.previous_image) for r in rows] == [
        ("apply", f"{REGISTRY}/web:1.5.0", f"{REGISTRY}/web:1.4.1")
    ]
    assert rows[0].config_map == "web-config"
    assert rows[0].config_data == SEEDED_DATA
    assert rows[0].idempotency_key == "corr-1/deploy/ring-0"
    assert "status" not in rows[0].manifest
    assert "resourceVersion" not in rows[0].manifest["metadata"]

    health = await _wait_health(cluster, "1.5.0", lambda h: h.healthy == 1)
    assert (health.targets, health.updated, health.failed) == (1, 1, 0)

    rolled = await cluster.plane.rollback(WEB0, "corr-1/rollback/ring-0")
    assert (rolled.changed, rolled.previous_version) == (True, "1.5.0")
    assert image(cluster) == f"{REGISTRY}/web:1.4.1"
    again = await cluster.plane.rollback(WEB0, "corr-2/rollback/ring-0")
    assert not again.changed  # the last apply's previous image runs already: no toggling back
    assert image(cluster) == f"{REGISTRY}/web:1.4.1"
    assert [r.action for r in await recording.history(db_pool, RING0, "web")] == ["apply", "rollback"]


async def _wait_health(cluster: Cluster, version: str, predicate: Any, ring: int = 0) -> Any:
    deadline = time.monotonic() + 10
    while True:
        health = await cluster.plane.health("web", ring, version)
        if predicate(health):
            return health
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out waiting for health: {health}")
        await asyncio.sleep(0.05)


async def test_apply_with_an_artifact_and_a_failing_version_shows_in_health(cluster: Cluster) -> None:
    target = TargetRef("kubernetes", "web", 1, namespace="ring-1-canary", name="web")
    annotate(cluster, target, {KUBELET_FAIL_ANNOTATION: "NeverReady", KUBELET_FAIL_VERSION_ANNOTATION: "2.0.0"})
    result = await cluster.plane.apply(target, "2.0.0", "mirror.example.com/web", "c/deploy/ring-1")
    assert result.changed
    assert image(cluster, target) == "mirror.example.com/web:2.0.0"
    health = await _wait_health(cluster, "2.0.0", lambda h: h.failed == 1, ring=1)
    assert (health.targets, health.updated, health.healthy) == (1, 1, 0)
    assert health.success_rate == 0.0
    assert not health.observations[0].available
    assert "ConfigMap" not in health.observations[0].detail  # health does not read ConfigMaps


async def test_apply_to_the_running_version_changes_nothing_but_is_recorded(cluster: Cluster, db_pool: Pool) -> None:
    cluster.log.clear()
    result = await cluster.plane.apply(WEB0, "1.4.1", None, "c/noop")
    assert (result.changed, result.previous_version) == (False, None)
    assert cluster.log.count("PATCH") == 0
    [snapshot] = await recording.history(db_pool, RING0, "web")
    assert (snapshot.action, snapshot.previous_image) == ("snapshot", None)
    await cluster.plane.apply(WEB0, "1.5.0", None, "c/up")
    repeat = await cluster.plane.apply(WEB0, "1.5.0", None, "c/up-again")
    assert (repeat.changed, repeat.previous_version) == (False, "1.4.1")
    assert len(await recording.history(db_pool, RING0, "web")) == 2


async def test_the_same_key_patches_once_and_replays_the_result(cluster: Cluster) -> None:
    cluster.log.clear()
    first = await cluster.plane.apply(WEB0, "1.5.0", None, "corr-9/deploy/ring-0")
    # Someone moves the image on; a re-delivered step must not patch again.
    cluster.apps.patch_namespaced_deployment(
        "web", RING0, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "x/web:7"}]}}}}
    )
    second = await cluster.plane.apply(WEB0, "1.5.0", None, "corr-9/deploy/ring-0")
    assert cluster.log.count("PATCH") == 1
    assert (second.changed, second.previous_version, second.replayed) == (first.changed, "1.4.1", True)
    assert image(cluster) == "x/web:7"
    restarted = await cluster.plane.restart(WEB0, "corr-9/restart")
    assert (await cluster.plane.restart(WEB0, "corr-9/restart")).replayed
    assert restarted.changed
    assert cluster.log.count("PATCH") == 2


async def test_install_recreates_a_deleted_deployment_from_the_recorded_manifest(cluster: Cluster) -> None:
    await cluster.plane.apply(WEB0, "1.5.0", None, "c/deploy")
    assert not (await cluster.plane.install(WEB0, "c/install-0")).changed  # still there

    cluster.apps.delete_namespaced_deployment("web", RING0)
    cluster.core.delete_namespaced_config_map("web-config", RING0)
    assert not (await observe_one(cluster)).present
    result = await cluster.plane.install(WEB0, "c/install-1")
    assert result.changed
    assert "ConfigMap web-config" in result.detail
    seen = await wait_observed(cluster, lambda o: o.present and o.available, what="web re-created")
    assert (seen.version, seen.config_sha256) == ("1.5.0", config_hash(SEEDED_DATA))
    assert (await cluster.plane.install(WEB0, "c/install-1")).replayed


async def test_install_without_a_record_is_a_permanent_error(cluster: Cluster) -> None:
    cluster.apps.delete_namespaced_deployment("web", RING0)
    with pytest.raises(PlaneError, match="No recorded manifest") as raised:
        await cluster.plane.install(WEB0, "c/install")
    assert raised.value.transient is False


async def test_restart_stamps_the_template_and_clears_a_fail_until_restart(cluster: Cluster) -> None:
    await wait_observed(cluster, lambda o: o.available, what="web available")
    annotate(cluster, WEB0, {KUBELET_FAIL_UNTIL_RESTART_ANNOTATION: "CrashLoop"})
    await wait_observed(cluster, lambda o: not o.available, what="web crash-looping")
    result = await cluster.plane.restart(WEB0, "c/restart")
    assert result.changed
    stamp = cluster.deployment(RING0, "web")["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    assert stamp in result.detail
    await wait_observed(cluster, lambda o: o.available, what="web back after restart")


async def test_reapply_config_restores_the_recorded_data(cluster: Cluster) -> None:
    with pytest.raises(PlaneError, match="No recorded ConfigMap data"):
        await cluster.plane.reapply_config(WEB0, "c/config-0")
    await cluster.plane.apply(WEB0, "1.5.0", None, "c/deploy")
    assert not (await cluster.plane.reapply_config(WEB0, "c/config-1")).changed

    cluster.core.patch_namespaced_config_map("web-config", RING0, {"data": {"LOG_LEVEL": "debug", "EXTRA": "1"}})
    result = await cluster.plane.reapply_config(WEB0, "c/config-2")
    assert result.changed
    data = cluster.core.read_namespaced_config_map("web-config", RING0).data
    assert data == SEEDED_DATA
    assert (await observe_one(cluster)).config_sha256 == config_hash(SEEDED_DATA)

    cluster.core.delete_namespaced_config_map("web-config", RING0)
    recreated = await cluster.plane.reapply_config(WEB0, "c/config-3")
    assert recreated.changed
    assert "Re-created" in recreated.detail
    assert cluster.core.read_namespaced_config_map("web-config", RING0).data == SEEDED_DATA


async def test_first_sightings_are_recorded_so_never_applied_workloads_can_be_repaired(
    cluster: Cluster, db_pool: Pool
) -> None:
    payments = TargetRef("kubernetes", "payments", 0, namespace=RING0, name="payments")
    await cluster.plane.observe([WEB0, payments])
    await cluster.plane.observe([WEB0, payments])  # recorded once only
    [snapshot] = await recording.history(db_pool, RING0, "web")
    assert (snapshot.action, snapshot.image, snapshot.previous_image) == (
        "snapshot",
        f"{REGISTRY}/web:1.4.1",
        None,
    )
    assert (snapshot.config_map, snapshot.config_data) == ("web-config", SEEDED_DATA)
    assert len(await recording.history(db_pool, RING0, "payments")) == 1

    cluster.core.patch_namespaced_config_map("web-config", RING0, {"data": {"LOG_LEVEL": "debug"}})
    assert (await cluster.plane.reapply_config(WEB0, "c/config")).changed
    assert cluster.core.read_namespaced_config_map("web-config", RING0).data == SEEDED_DATA

    cluster.apps.delete_namespaced_deployment("web", RING0)
    assert (await cluster.plane.install(WEB0, "c/install")).changed
    assert image(cluster) == f"{REGISTRY}/web:1.4.1"
    with pytest.raises(PlaneError, match="No recorded apply"):
        await cluster.plane.rollback(WEB0, "c/rollback")  # a snapshot is not an apply
