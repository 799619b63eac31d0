"""Helm itself installs, upgrades and uninstalls the chart on the emulator (authentication and RBAC on).

helm-python-sdk's public `Config.install` validates manifests against `/openapi/v2`, which the emulator
does not serve; its C layer takes `disable_openapi_validation` (with server-side apply) but the Python
wrapper does not pass it, so this test calls the library's `helm_install` / `helm_upgrade` directly
(helm-python-sdk is pinned below 0.3 in pyproject.toml for this). The emulator serves no Job and no
PodDisruptionBudget, so the release is made with `migrate: false` and `pdb.enabled: false`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
from helm_python import _native
from kubernetes import client

from controller.api.policy import load_policy
from controller.devkit.identities import prepare_identities, start_secured_emulator
from controller.devkit.processes import ProcessGroup
from tests.chart.chartrender import CHART, NAMESPACE, REQUIRED, merged

pytestmark = pytest.mark.e2e
VALUES = merged(REQUIRED, {"migrate": False, "pdb": {"enabled": False}})
GROUP, VERSION = "ringpilot.dev", "v1alpha1"


def release(config: helm.Config, action: str, values: dict[str, Any]) -> dict[str, Any]:
    """`helm install|upgrade ringpilot charts/ringpilot --server-side` without OpenAPI validation."""
    options = {
        "namespace": NAMESPACE,
        "disable_openapi_validation": True,
        # install takes a bool, upgrade a string ("true", "false", "auto")
        "server_side_apply": True if action == "install" else "true",
    }
    payload = _native.call_string(
        f"helm_{action}",
        config._raw(),
        _native.HANDLE(0),
        _native.HANDLE(0),
        str(CHART),
        "ringpilot",
        json.dumps(values),
        json.dumps(options),
    )
    answer: dict[str, Any] = json.loads(payload)
    return answer


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[client.ApiClient, helm.Config]]:
    root = Path(tempfile.mkdtemp(prefix="ringpilot-helm-e2e-"))
    group = ProcessGroup()
    try:
        identities = prepare_identities(root / "identity", load_policy(None))
        kubeconfig = root / "kubeconfig"
        _, _, api = start_secured_emulator(group, kubeconfig, identities, 1, root / "emulator.log")
        client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
        with helm.Config(kubeconfig_path=str(kubeconfig), namespace=NAMESPACE) as config:
            yield api, config
    finally:
        group.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def test_helm_installs_the_release_as_cluster_admin(cluster: tuple[client.ApiClient, helm.Config]) -> None:
    api, config = cluster
    installed = release(config, "install", VALUES)
    assert (installed["revision"], installed["status"]) == (1, "deployed")
    assert "port-forward svc/ringpilot-gateway" in installed["notes"]
    deployments = client.AppsV1Api(api).list_namespaced_deployment(NAMESPACE).items
    assert {d.metadata.name for d in deployments} == {
        "ringpilot-controller",
        "ringpilot-worker-turns",
        "ringpilot-worker-steps",
        "ringpilot-gateway",
    }
    roles = {r.metadata.name for r in client.RbacAuthorizationV1Api(api).list_cluster_role().items}
    assert {"ringpilot-controller", "ringpilot-worker", "ringpilot-gateway", "ringpilot-admin"} <= roles
    assert config.status("ringpilot").get("status") == "deployed"


def test_an_upgrade_applies_new_values_and_keeps_stored_objects(cluster: tuple[client.ApiClient, helm.Config]) -> None:
    api, config = cluster
    custom = client.CustomObjectsApi(api)
    task = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DeploymentTask",
        "metadata": {"name": "kept"},
        "spec": {"app": "web", "version": "1.0.0", "maxRing": 0, "requestedBy": "dev-publisher"},
    }
    # No controller runs here, so nothing serves the webhooks: this object is written around them (as an
    # object stored before the upgrade would have been), by switching them off for the write.
    admission = client.AdmissionregistrationV1Api(api)
    admission.delete_mutating_webhook_configuration("ringpilot-stamping")
    admission.delete_validating_webhook_configuration("ringpilot-guards")
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", "deploymenttasks", task)
    core = client.CoreV1Api(api)
    ca_before = core.read_namespaced_secret("ringpilot-webhook-tls", NAMESPACE).data["ca.crt"]
    upgraded = release(config, "upgrade", merged(VALUES, {"gateway": {"replicas": 3}}))
    assert (upgraded["revision"], upgraded["status"]) == (2, "deployed")
    gateway = client.AppsV1Api(api).read_namespaced_deployment("ringpilot-gateway", NAMESPACE)
    assert gateway.spec.replicas == 3
    guards = admission.read_validating_webhook_configuration("ringpilot-guards")  # restored by the upgrade
    # the certificate is looked up and reused: the CA under running pods does not change
    assert core.read_namespaced_secret("ringpilot-webhook-tls", NAMESPACE).data["ca.crt"] == ca_before
    assert {hook.client_config.ca_bundle for hook in guards.webhooks} == {ca_before}
    assert (
        custom.get_namespaced_custom_object(GROUP, VERSION, "default", "deploymenttasks", "kept")["spec"]["app"]
        == "web"
    )


def test_uninstall_removes_the_release_but_keeps_the_crds_and_their_objects(
    cluster: tuple[client.ApiClient, helm.Config],
) -> None:
    api, config = cluster
    failure = ""
    try:
        config.uninstall("ringpilot")
    except helm.HelmError as error:
        failure = str(error)
    # Helm deletes its release record with a protobuf DeleteOptions body, which the emulator refuses.
    assert failure == "" or "Failed to purge the release" in failure, failure
    assert client.AppsV1Api(api).list_namespaced_deployment(NAMESPACE).items == []
    crds = {c.metadata.name for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items}
    assert "deploymenttasks.ringpilot.dev" in crds
    kept = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, "default", "deploymenttasks", "kept"
    )
    assert kept["metadata"]["name"] == "kept"
