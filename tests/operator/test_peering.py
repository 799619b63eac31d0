"""Hot standby: with RINGPILOT_PEERING the operator joins its ClusterKopfPeering instead of running standalone."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from controller.devkit.chartgen import peering_crd
from controller.operator.running import operator_task, peering_priority
from controller.settings import ControllerSettings


def _peers(api: Any) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)
    body = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", "ringpilot-early")
    return dict(body.get("status") or {})


def test_a_controller_with_peering_keeps_itself_alive_in_its_cluster_peering(
    cluster: Any, database_url: str, redis_url: str, tmp_path: Path, quiet_kopf: None
) -> None:
    client.ApiextensionsV1Api(cluster).create_custom_resource_definition(peering_crd())
    custom = client.CustomObjectsApi(cluster)
    peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "ringpilot-early"}}
    deadline = time.monotonic() + 10
    while True:  # the emulator serves a new CRD's kind a moment after it is created
        try:
            custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering)
            break
        except client.exceptions.ApiException as error:
            if error.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    settings = ControllerSettings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path,
        liveness_port=0,
        namespace=["default", "ring-*"],  # a shard: still one cluster-wide peering object
        peering="ringpilot-early",
        peering_priority=7,
    )
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(operator_task(settings, stop))
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=run, name="kopf-peering", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not _peers(cluster) and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.1)
        peers = _peers(cluster)
        assert peers, f"no keep-alive in the ClusterKopfPeering (operator failures: {failures})"
        assert [peer["priority"] for peer in peers.values()] == [7]
    finally:
        stop.set()
        thread.join(20)
    assert failures == []


def test_an_unset_priority_is_random_so_two_standbys_do_not_tie() -> None:
    settings = ControllerSettings(peering="ringpilot")
    priorities = {peering_priority(settings) for _ in range(20)}
    assert len(priorities) > 1
    assert all(priority >= 1 for priority in priorities)
    assert peering_priority(ControllerSettings(peering="ringpilot", peering_priority=3)) == 3
