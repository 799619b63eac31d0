"""The simulated kubelet reports what a cluster would, and fails what it is told to fail."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from controller.api.labels import (
    KUBELET_FAIL_ANNOTATION,
    KUBELET_FAIL_UNTIL_RESTART_ANNOTATION,
    KUBELET_FAIL_VERSION_ANNOTATION,
)
from controller.devkit.kubelet import Failures, SimulatedKubelet, desired_status, image_tag
from controller.devkit.seeding import RING_NAMESPACES, SampleApp, deployment_manifest, seed_rings
from tests.fixtures.stack import wait_for

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def deployment(tag: str = "1.4.1", generation: int = 1, replicas: int = 2, **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "ring-0-lab", "generation": generation, "annotations": annotations},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"image": f"r.io/team/web:{tag}"}]}}},
    }


@pytest.mark.parametrize(
    ("image", "tag"),
    [("r.io/web:1.2", "1.2"), ("localhost:5000/web:3", "3"), ("web", ""), ("r.io/web:1@sha256:ab", "1")],
)
def test_image_tags_are_read_like_a_registry_would(image: str, tag: str) -> None:
    assert image_tag(image) == tag


def test_a_healthy_deployment_is_fully_available() -> None:
    status = desired_status(deployment(generation=4), None, NOW)
    assert status["observedGeneration"] == 4
    assert status["readyReplicas"] == status["availableReplicas"] == status["updatedReplicas"] == 2
    available = next(c for c in status["conditions"] if c["type"] == "Available")
    assert available["status"] == "True"
    assert "unavailableReplicas" not in status


def test_a_crash_looping_deployment_is_unavailable_and_says_why() -> None:
    status = desired_status(deployment(), "CrashLoop", NOW)
    assert status["readyReplicas"] == 0 and status["unavailableReplicas"] == 2
    available = next(c for c in status["conditions"] if c["type"] == "Available")
    assert available["status"] == "False" and "CrashLoopBackOff" in available["message"]


def test_transition_time_is_kept_while_the_status_holds() -> None:
    first = desired_status(deployment(), None, NOW)
    body = deployment()
    body["status"] = first
    later = desired_status(body, None, NOW.replace(hour=13))
    assert later["conditions"][0]["lastTransitionTime"] == first["conditions"][0]["lastTransitionTime"]


def test_failures_follow_the_annotations_of_the_workload_and_its_namespace() -> None:
    failures = Failures()
    assert failures.mode_for(deployment()) is None
    assert failures.mode_for(deployment(**{KUBELET_FAIL_ANNOTATION: "NeverReady"})) == "NeverReady"
    assert failures.mode_for(deployment(**{KUBELET_FAIL_ANNOTATION: "Sometimes"})) is None
    failures.namespace_annotations["ring-0-lab"] = {
        KUBELET_FAIL_ANNOTATION: "CrashLoop",
        KUBELET_FAIL_VERSION_ANNOTATION: "1.4.2",
    }
    assert failures.mode_for(deployment("1.4.1")) is None
    assert failures.mode_for(deployment("1.4.2")) == "CrashLoop"


def test_a_crash_loop_until_restart_clears_when_the_template_changes() -> None:
    failures = Failures()
    assert (
        failures.mode_for(deployment(generation=3, **{KUBELET_FAIL_UNTIL_RESTART_ANNOTATION: "CrashLoop"}))
        == "CrashLoop"
    )
    assert (
        failures.mode_for(deployment(generation=3, **{KUBELET_FAIL_UNTIL_RESTART_ANNOTATION: "CrashLoop"}))
        == "CrashLoop"
    )
    assert failures.mode_for(deployment(generation=4, **{KUBELET_FAIL_UNTIL_RESTART_ANNOTATION: "CrashLoop"})) is None
    assert failures.mode_for(deployment(generation=4)) is None
    assert (
        failures.mode_for(deployment(generation=4, **{KUBELET_FAIL_UNTIL_RESTART_ANNOTATION: "CrashLoop"}))
        == "CrashLoop"
    )


class CountingKubelet(SimulatedKubelet):
    """Counts the Deployments it reads to reconcile."""

    def __init__(self, api_client: Any) -> None:
        super().__init__(api_client, rollout_delay_seconds=0.01)
        self.reads: Counter[str] = Counter()

    def reconcile(self, namespace: str, name: str) -> None:
        self.reads[name] += 1
        super().reconcile(namespace, name)


def quiet(kubelet: CountingKubelet) -> int | None:
    """How many reads the kubelet made, once none came for half a second (None while it still reads)."""
    before = sum(kubelet.reads.values())
    time.sleep(0.5)
    after = sum(kubelet.reads.values())
    return after if after == before and not kubelet._due else None


def test_deployments_that_already_report_their_status_are_not_read_again(kube_api: Any) -> None:
    seed_rings(kube_api, apps=())
    apps = client.AppsV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    namespace = RING_NAMESPACES[0]
    names = [f"app{i}" for i in range(20)]
    for name in names:
        apps.create_namespaced_deployment(namespace, deployment_manifest(SampleApp(name, replicas=1), namespace))
    kubelet = CountingKubelet(kube_api)
    kubelet.start()
    try:

        def available(name: str) -> bool:
            status = apps.read_namespaced_deployment_status(name, namespace).status
            return bool(status and status.available_replicas == 1)

        wait_for(lambda: all(available(n) for n in names), 20, what="the kubelet to bring every Deployment up")
        settled = wait_for(lambda: quiet(kubelet), 10, what="the kubelet to stop reading")
        # An unrelated namespace change makes the kubelet look at every Deployment again, as a relist does.
        core.patch_namespace(namespace, {"metadata": {"annotations": {"team": "web"}}})
        apps.create_namespaced_deployment(namespace, deployment_manifest(SampleApp("late", replicas=1), namespace))
        wait_for(lambda: available("late"), 20, what="the late Deployment to come up")
        time.sleep(0.3)
        assert sum(kubelet.reads.values()) - settled - kubelet.reads["late"] == 0
        assert 1 <= kubelet.reads["late"] <= 2  # it was created, then its status written once
        core.patch_namespace(namespace, {"metadata": {"annotations": {KUBELET_FAIL_ANNOTATION: "CrashLoop"}}})
        wait_for(lambda: not available("app3"), 20, what="a namespace-wide crash loop to take app3 down")
    finally:
        kubelet.stop()
