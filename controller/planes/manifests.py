"""Reading and shaping Deployment manifests for the kubernetes plane: pure functions over JSON dicts.

What a workload runs (main container image and tag), which ConfigMap it references, whether it is
available and since when, how it compares with a version, and the manifest `install` re-creates.
Called by controller/planes/kubernetes.py; no I/O here, so every rule is tested without a cluster.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import datetime
from typing import Any

from controller.api.labels import APP_NAME_LABEL
from controller.planes.base import Observation, TargetRef

Json = dict[str, Any]

#: The annotation `kubectl rollout restart` sets on the pod template.
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"

#: Metadata the API server owns; stripped before a recorded manifest is created again.
_SERVER_METADATA = (
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
)


def config_hash(data: dict[str, str]) -> str:
    """SHA-256 of a ConfigMap's data: what "configuration drift" compares."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def split_image(image: str) -> tuple[str, str]:
    """(repository, tag) of an image reference; the tag is '' when there is none (a digest is dropped)."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, ""


def image_tag(image: str | None) -> str | None:
    """The tag of an image reference, or None when there is no image or no tag."""
    if not image:
        return None
    return split_image(image)[1] or None


def target_image(current: str, version: str, artifact: str | None) -> str:
    """`<artifact or current repository>:<version>`."""
    return f"{artifact or split_image(current)[0]}:{version}"


def containers(deployment: Json) -> list[Json]:
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    return list(spec.get("containers") or [])


def main_container(deployment: Json) -> Json | None:
    """The first container: the one whose image tag is the workload's version."""
    found = containers(deployment)
    return found[0] if found else None


def main_image(deployment: Json) -> str | None:
    container = main_container(deployment)
    return str(container["image"]) if container and container.get("image") else None


def config_map_name(deployment: Json) -> str | None:
    """The ConfigMap the workload references: the main container's first `envFrom.configMapRef`,
    else its first `env[].valueFrom.configMapKeyRef`, else the pod's first `configMap` volume."""
    container = main_container(deployment) or {}
    for source in container.get("envFrom") or []:
        name = (source.get("configMapRef") or {}).get("name")
        if name:
            return str(name)
    for env in container.get("env") or []:
        name = ((env.get("valueFrom") or {}).get("configMapKeyRef") or {}).get("name")
        if name:
            return str(name)
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    for volume in spec.get("volumes") or []:
        name = (volume.get("configMap") or {}).get("name")
        if name:
            return str(name)
    return None


def config_map_data(config_map: Json) -> dict[str, str]:
    return {str(k): str(v) for k, v in (config_map.get("data") or {}).items()}


def _conditions(deployment: Json) -> dict[str, Json]:
    status = deployment.get("status") or {}
    return {str(c.get("type")): c for c in status.get("conditions") or []}


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def desired_replicas(deployment: Json) -> int:
    replicas = (deployment.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def is_available(deployment: Json) -> bool:
    """Available condition True and every desired replica ready."""
    status = deployment.get("status") or {}
    available = _conditions(deployment).get("Available", {}).get("status") == "True"
    return available and int(status.get("readyReplicas") or 0) >= desired_replicas(deployment)


def unavailable_since(deployment: Json) -> datetime | None:
    """When the workload stopped being available: the Available=False condition's lastTransitionTime,
    else the last Progressing update, else its creation. None while it is available."""
    if is_available(deployment):
        return None
    conditions = _conditions(deployment)
    available = conditions.get("Available", {})
    if available.get("status") == "False" and _timestamp(available.get("lastTransitionTime")):
        return _timestamp(available.get("lastTransitionTime"))
    progressing = conditions.get("Progressing", {})
    since = _timestamp(progressing.get("lastUpdateTime")) or _timestamp(progressing.get("lastTransitionTime"))
    return since or _timestamp((deployment.get("metadata") or {}).get("creationTimestamp"))


def is_rolled_out(deployment: Json) -> bool:
    """The controller has seen the current spec and every replica runs the current template."""
    status = deployment.get("status") or {}
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    return observed >= generation and int(status.get("updatedReplicas") or 0) >= desired_replicas(deployment)


def observe_deployment(target: TargetRef, deployment: Json | None, config_maps: dict[str, Json] | None) -> Observation:
    """The `Observation` of one target from its Deployment (None = missing) and its namespace's ConfigMaps
    (None = not read: `config_sha256` stays None and no missing ConfigMap is reported)."""
    if deployment is None:
        return Observation(target=target, present=False, detail="Deployment not found")
    image = main_image(deployment)
    status = deployment.get("status") or {}
    cm_name = config_map_name(deployment)
    cm = config_maps.get(cm_name) if cm_name and config_maps is not None else None
    details = []
    if cm_name and cm is None and config_maps is not None:
        details.append(f"ConfigMap {cm_name} not found")
    available = is_available(deployment)
    if not available:
        reason = _conditions(deployment).get("Available", {}).get("message") or "not available"
        details.append(str(reason))
    return Observation(
        target=target,
        present=True,
        version=image_tag(image),
        image=image,
        config_sha256=config_hash(config_map_data(cm)) if cm is not None else None,
        config_map=cm_name,
        available=available,
        replicas=desired_replicas(deployment),
        ready_replicas=int(status.get("readyReplicas") or 0),
        updated=is_rolled_out(deployment),
        unavailable_since=unavailable_since(deployment),
        detail="; ".join(details),
    )


def with_image(deployment: Json, image: str) -> Json:
    """A copy of `deployment` whose main container runs `image`."""
    result = copy.deepcopy(deployment)
    found = containers(result)
    if found:
        found[0]["image"] = image
        result["spec"]["template"]["spec"]["containers"] = found
    return result


def installable(deployment: Json) -> Json:
    """The manifest to record for a later re-create: no status, no server-owned metadata."""
    result = copy.deepcopy(deployment)
    result.pop("status", None)
    result.setdefault("apiVersion", "apps/v1")
    result.setdefault("kind", "Deployment")
    metadata = result.setdefault("metadata", {})
    for key in _SERVER_METADATA:
        metadata.pop(key, None)
    annotations = metadata.get("annotations") or {}
    annotations.pop("deployment.kubernetes.io/revision", None)
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    return result


def image_patch(deployment: Json, image: str) -> Json:
    """Strategic merge patch setting the main container's image (merge key: container name)."""
    container = main_container(deployment) or {}
    return {"spec": {"template": {"spec": {"containers": [{"name": container.get("name"), "image": image}]}}}}


def restart_patch(stamp: str) -> Json:
    """Strategic merge patch of a rollout restart."""
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


def config_map_manifest(namespace: str, name: str, app: str, data: dict[str, str]) -> Json:
    """A ConfigMap to re-create from recorded data."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {APP_NAME_LABEL: app}},
        "data": dict(data),
    }
