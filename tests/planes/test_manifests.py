"""Pure rules of the kubernetes plane: images and tags, the referenced ConfigMap, availability,
rollout state, observations and the manifest recorded for re-creation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from controller.devkit.seeding import SampleApp, deployment_manifest
from controller.planes import manifests as m
from controller.planes.base import TargetRef
from controller.planes.manifests import config_hash

TARGET = TargetRef("kubernetes", "web", 0, namespace="ring-0-lab", name="web")


def deployment(**status: Any) -> dict[str, Any]:
    manifest = deployment_manifest(SampleApp("web"), "ring-0-lab")
    manifest["metadata"].update(generation=2, uid="u-1", resourceVersion="7", creationTimestamp="2024-01-01T00:00:00Z")
    manifest["status"] = status
    return manifest


def available(ready: int = 2, since: str = "2024-01-02T00:00:00Z", ok: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "observedGeneration": 2,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": ready,
        "conditions": [
            {
                "type": "Available",
                "status": "True" if ok else "False",
                "lastTransitionTime": since,
                "message": "Pods are failing: CrashLoopBackOff." if not ok else "ok",
            },
            {"type": "Progressing", "status": "True", "lastUpdateTime": "2024-01-03T00:00:00Z"},
        ],
        **extra,
    }


@pytest.mark.parametrize(
    ("image", "repository", "tag"),
    [
        ("registry.example.com/team/web:1.4.1", "registry.example.com/team/web", "1.4.1"),
        ("localhost:5000/web:2", "localhost:5000/web", "2"),
        ("localhost:5000/web", "localhost:5000/web", ""),
        ("nginx", "nginx", ""),
        ("nginx:1.25@sha256:abc", "nginx", "1.25"),
    ],
)
def test_images_split_into_repository_and_tag(image: str, repository: str, tag: str) -> None:
    assert m.split_image(image) == (repository, tag)
    assert m.image_tag(image) == (tag or None)


def test_the_target_image_keeps_the_repository_unless_an_artifact_is_given() -> None:
    assert m.target_image("reg/team/web:1.4.1", "1.5.0", None) == "reg/team/web:1.5.0"
    assert m.target_image("reg/team/web:1.4.1", "1.5.0", "other/web") == "other/web:1.5.0"
    assert m.image_tag(None) is None


def test_the_referenced_config_map_is_found_in_env_from_env_or_volumes() -> None:
    manifest = deployment()
    assert m.config_map_name(manifest) == "web-config"
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container.pop("envFrom")
    assert m.config_map_name(manifest) is None
    container["env"] = [
        {"name": "A", "value": "1"},
        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm"}}},
    ]
    assert m.config_map_name(manifest) == "env-cm"
    container.pop("env")
    manifest["spec"]["template"]["spec"]["volumes"] = [
        {"name": "s", "secret": {}},
        {"name": "c", "configMap": {"name": "vol-cm"}},
    ]
    assert m.config_map_name(manifest) == "vol-cm"


def test_availability_needs_the_condition_and_every_replica_ready() -> None:
    assert m.is_available(deployment(**available()))
    assert not m.is_available(deployment(**available(ready=1)))
    assert not m.is_available(deployment(**available(ok=False, ready=0)))
    assert not m.is_available(deployment())


def test_unavailable_since_comes_from_the_available_condition_then_progress_then_creation() -> None:
    assert m.unavailable_since(deployment(**available())) is None
    down = deployment(**available(ok=False, ready=0, since="2024-02-01T10:00:00Z"))
    assert m.unavailable_since(down) == datetime(2024, 2, 1, 10, tzinfo=UTC)
    not_ready = deployment(**available(ready=1))
    assert m.unavailable_since(not_ready) == datetime(2024, 1, 3, tzinfo=UTC)
    assert m.unavailable_since(deployment()) == datetime(2024, 1, 1, tzinfo=UTC)
    broken = deployment(conditions=[{"type": "Available", "status": "False", "lastTransitionTime": "yesterday"}])
    broken["metadata"].pop("creationTimestamp")
    assert m.unavailable_since(broken) is None


def test_rolled_out_means_generation_observed_and_replicas_updated() -> None:
    assert m.is_rolled_out(deployment(**available()))
    assert not m.is_rolled_out(deployment(**available(observedGeneration=1)))
    assert not m.is_rolled_out(deployment(**available(updatedReplicas=1)))


def test_an_observation_reports_version_config_and_service_state() -> None:
    data = {"LOG_LEVEL": "info"}
    config_maps = {"web-config": {"metadata": {"name": "web-config"}, "data": data}}
    seen = m.observe_deployment(TARGET, deployment(**available()), config_maps)
    assert (seen.present, seen.version, seen.image) == (True, "1.4.1", "registry.example.com/team/web:1.4.1")
    assert (seen.config_map, seen.config_sha256) == ("web-config", config_hash(data))
    assert (seen.available, seen.replicas, seen.ready_replicas, seen.updated) == (True, 2, 2, True)
    assert seen.detail == ""

    down = m.observe_deployment(TARGET, deployment(**available(ok=False, ready=0)), {})
    assert not down.available
    assert down.config_sha256 is None
    assert "ConfigMap web-config not found" in down.detail
    assert "CrashLoopBackOff" in down.detail

    missing = m.observe_deployment(TARGET, None, {})
    assert not missing.present
    assert missing.version is None

    unread = m.observe_deployment(TARGET, deployment(**available()), None)
    assert (unread.config_map, unread.config_sha256, unread.detail) == ("web-config", None, "")


def test_the_recorded_manifest_has_no_status_or_server_fields() -> None:
    manifest = deployment(**available())
    manifest["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "3", "team": "a"}
    manifest["metadata"]["managedFields"] = [{}]
    clean = m.installable(m.with_image(manifest, "reg/web:2.0.0"))
    assert "status" not in clean
    assert set(clean["metadata"]) == {"name", "namespace", "labels", "annotations"}
    assert clean["metadata"]["annotations"] == {"team": "a"}
    assert clean["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/web:2.0.0"
    assert manifest["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.4.1")  # not mutated
    bare = m.installable({"metadata": {"name": "x", "annotations": {"deployment.kubernetes.io/revision": "1"}}})
    assert bare == {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}


def test_patches_name_the_main_container_and_the_restart_annotation() -> None:
    patch = m.image_patch(deployment(), "reg/web:2")
    assert patch["spec"]["template"]["spec"]["containers"] == [{"name": "web", "image": "reg/web:2"}]
    assert m.restart_patch("now")["spec"]["template"]["metadata"]["annotations"] == {m.RESTARTED_AT: "now"}
    assert m.main_image({"spec": {}}) is None
    assert m.with_image({"spec": {}}, "x") == {"spec": {}}
    cm = m.config_map_manifest("ns", "cm", "web", {"a": "1"})
    assert cm["metadata"]["labels"] == {"app.kubernetes.io/name": "web"}
    assert cm["data"] == {"a": "1"}
