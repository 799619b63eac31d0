"""Seeding a cluster for `ringpilot dev` and the e2e tests: CRDs, ring namespaces, sample apps.

Idempotent: existing objects are left as they are, so a restarted dev stack keeps the
state the user created. Works against any API server (the emulator or a real cluster).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controller.api.crdgen import all_crds
from controller.api.labels import APP_NAME_LABEL, RING_NAMESPACE_LABEL

RING_NAMESPACES = ("ring-0-lab", "ring-1-canary", "ring-2-pilot", "ring-3-department", "ring-4-global")
SAMPLE_APPS = ("web", "payments")
SAMPLE_VERSION = "1.4.1"
REGISTRY = "registry.example.com/team"


@dataclass(frozen=True)
class SampleApp:
    name: str
    version: str = SAMPLE_VERSION
    replicas: int = 2


def namespace_manifest(ring: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": RING_NAMESPACES[ring], "labels": {RING_NAMESPACE_LABEL: str(ring)}},
    }


def configmap_manifest(app: SampleApp, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{app.name}-config", "namespace": namespace, "labels": {APP_NAME_LABEL: app.name}},
        "data": {"LOG_LEVEL": "info", "FEATURE_FLAGS": "checkout-v2"},
    }


def deployment_manifest(app: SampleApp, namespace: str) -> dict[str, Any]:
    labels = {APP_NAME_LABEL: app.name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app.name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": app.replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": app.name,
                            "image": f"{REGISTRY}/{app.name}:{app.version}",
                            "envFrom": [{"configMapRef": {"name": f"{app.name}-config"}}],
                        }
                    ]
                },
            },
        },
    }


def _create(fn: Any, *args: Any) -> bool:
    try:
        fn(*args)
        return True
    except ApiException as error:
        if error.status == 409:
            return False
        raise


def apply_crds(api_client: client.ApiClient, wait_seconds: float = 10.0) -> None:
    """Create (or update) our CRDs and wait until the API serves them."""
    ext: Any = client.ApiextensionsV1Api(api_client)  # takes plain dicts as bodies
    for crd in all_crds():
        name = crd["metadata"]["name"]
        try:
            current = ext.read_custom_resource_definition(name)
            crd = {**crd, "metadata": {**crd["metadata"], "resourceVersion": current.metadata.resource_version}}
            ext.replace_custom_resource_definition(name, crd)
        except ApiException as error:
            if error.status != 404:
                raise
            ext.create_custom_resource_definition(crd)
    custom = client.CustomObjectsApi(api_client)
    deadline = time.monotonic() + wait_seconds
    for crd in all_crds():
        plural = crd["spec"]["names"]["plural"]
        while True:
            try:
                custom.list_cluster_custom_object(crd["spec"]["group"], crd["spec"]["versions"][0]["name"], plural)
                break
            except ApiException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def seed_rings(api_client: client.ApiClient, apps: tuple[str, ...] = SAMPLE_APPS) -> list[str]:
    """Ring namespaces 0-4 with each sample app in each; returns what was created."""
    core = client.CoreV1Api(api_client)
    appsv1 = client.AppsV1Api(api_client)
    created = []
    for ring, namespace in enumerate(RING_NAMESPACES):
        if _create(core.create_namespace, namespace_manifest(ring)):
            created.append(f"namespace/{namespace}")
        for name in apps:
            app = SampleApp(name)
            if _create(core.create_namespaced_config_map, namespace, configmap_manifest(app, namespace)):
                created.append(f"configmap/{namespace}/{app.name}-config")
            if _create(appsv1.create_namespaced_deployment, namespace, deployment_manifest(app, namespace)):
                created.append(f"deployment/{namespace}/{app.name}")
    return created
