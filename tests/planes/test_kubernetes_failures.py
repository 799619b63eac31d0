"""The kubernetes plane when things go wrong: missing objects, API and connection failures, failed
patches, workloads without config or containers, and PostgreSQL bookkeeping failures."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from kubernetes import client

from controller.devkit.seeding import SampleApp, deployment_manifest
from controller.planes import recording
from controller.planes.base import PlaneError, TargetRef
from controller.planes.kubeapi import KubeError
from controller.planes.kubernetes import KubernetesPlane
from controller.storage.db import Pool
from tests.planes.conftest import Cluster

RING0 = "ring-0-lab"
WEB0 = TargetRef("kubernetes", "web", 0, namespace=RING0, name="web")


async def test_missing_targets_are_permanent_errors_and_free_their_key(cluster: Cluster) -> None:
    ghost = TargetRef("kubernetes", "web", 0, namespace=RING0, name="ghost")
    for call in (
        lambda: cluster.plane.apply(ghost, "1.5.0", None, "c/k"),
        lambda: cluster.plane.restart(ghost, "c/k"),
        lambda: cluster.plane.rollback(WEB0, "c/k"),
    ):
        with pytest.raises(PlaneError) as raised:
            await call()
        assert raised.value.transient is False
    with pytest.raises(KubeError) as again:
        await cluster.plane.apply(ghost, "1.5.0", None, "c/k")  # the failed attempt left no claim behind
    assert again.value.status == 404


async def test_server_and_connection_failures_are_transient(cluster: Cluster, db_pool: Pool) -> None:
    def unavailable(*_: Any, **__: Any) -> Any:
        raise client.exceptions.ApiException(status=503, reason="Service Unavailable")

    cluster.plane.api.api_client.call_api = unavailable
    with pytest.raises(PlaneError) as raised:
        await cluster.plane.observe([WEB0])
    assert raised.value.transient is True

    configuration = client.Configuration(host="http://127.0.0.1:9")  # discard port: nothing listens
    configuration.retries = False
    offline_client = client.ApiClient(configuration)
    try:
        with pytest.raises(PlaneError) as refused:
            await KubernetesPlane(offline_client, db_pool).apply(WEB0, "1.5.0", None, "c/offline")
    finally:
        offline_client.close()
    assert refused.value.transient is True


async def test_a_failed_patch_leaves_no_record_and_no_claim(cluster: Cluster, db_pool: Pool) -> None:
    cluster.log.fail("PATCH", "/deployments/web", 500)
    with pytest.raises(PlaneError) as raised:
        await cluster.plane.apply(WEB0, "1.5.0", None, "c/deploy")
    assert raised.value.transient is True
    assert await recording.history(db_pool, RING0, "web") == []
    cluster.log.faults.clear()
    assert (await cluster.plane.apply(WEB0, "1.5.0", None, "c/deploy")).changed  # the retry acts
    await cluster.plane.apply(WEB0, "1.6.0", None, "c/deploy-2")
    cluster.log.fail("PATCH", "/deployments/web", 409)
    with pytest.raises(PlaneError) as conflict:
        await cluster.plane.rollback(WEB0, "c/rollback")
    assert conflict.value.transient is False
    assert [r.action for r in await recording.history(db_pool, RING0, "web")] == ["apply", "apply"]


async def test_errors_reading_related_objects_are_not_mistaken_for_absence(cluster: Cluster) -> None:
    await cluster.plane.apply(WEB0, "1.5.0", None, "c/deploy")
    cluster.log.fail("GET", "/configmaps/web-config", 503)
    with pytest.raises(PlaneError, match="503"):
        await cluster.plane.apply(WEB0, "1.6.0", None, "c/deploy-2")
    with pytest.raises(PlaneError, match="503"):
        await cluster.plane.reapply_config(WEB0, "c/config")
    cluster.log.faults.clear()

    cluster.log.fail("GET", "/deployments/web", 500)
    with pytest.raises(PlaneError, match="500"):
        await cluster.plane.install(WEB0, "c/install")
    cluster.log.faults.clear()

    cluster.apps.delete_namespaced_deployment("web", RING0)
    cluster.core.delete_namespaced_config_map("web-config", RING0)
    cluster.log.fail("POST", "/configmaps", 403)
    with pytest.raises(PlaneError, match="403"):
        await cluster.plane.install(WEB0, "c/install")
    cluster.log.faults.clear()

    cluster.log.fail("POST", "/deployments", 409)  # someone else re-created it between our read and create
    raced = await cluster.plane.install(WEB0, "c/install")
    assert not raced.changed
    assert "meanwhile" in raced.detail
    cluster.log.faults.clear()
    cluster.log.fail("POST", "/deployments", 422)
    with pytest.raises(PlaneError, match="422"):
        await cluster.plane.install(WEB0, "c/install-2")


async def test_a_workload_without_config_or_containers(cluster: Cluster, db_pool: Pool) -> None:
    manifest = deployment_manifest(SampleApp("bare"), RING0)
    manifest["spec"]["template"]["spec"]["containers"][0].pop("envFrom")
    cluster.apps.create_namespaced_deployment(RING0, manifest)
    bare = TargetRef("kubernetes", "bare", 0, namespace=RING0, name="bare")
    assert (await cluster.plane.apply(bare, "2.0.0", None, "c/bare")).changed
    [row] = await recording.history(db_pool, RING0, "bare")
    assert (row.config_map, row.config_data) == (None, None)
    [seen] = await cluster.plane.observe([bare])
    assert (seen.config_map, seen.config_sha256, seen.version) == (None, None, "2.0.0")

    empty: dict[str, Any] = {"metadata": {"name": "bare"}, "spec": {"template": {"spec": {"containers": []}}}}
    sent = cluster.plane.api.read_deployment

    async def no_containers(namespace: str, name: str) -> dict[str, Any]:
        await sent(namespace, name)
        return empty

    cluster.plane.api.read_deployment = no_containers  # type: ignore[method-assign]
    with pytest.raises(PlaneError, match="has no container image") as raised:
        await cluster.plane.apply(bare, "3.0.0", None, "c/bare-2")
    assert raised.value.transient is False


async def test_observing_survives_a_bookkeeping_failure(
    cluster: Cluster, db_pool: Pool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def down(*_: Any) -> set[tuple[str, str]]:
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(recording, "unrecorded", down)
    [seen] = await cluster.plane.observe([WEB0])
    assert seen.present
    assert "Could not record first-sighting snapshots" in caplog.text
    quiet = KubernetesPlane(cluster.plane.api.api_client, db_pool, record_snapshots=False)
    assert (await quiet.observe([WEB0]))[0].present
