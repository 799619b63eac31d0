"""The chart works as installed: its rendered defaults on the emulator with authentication, RBAC and admission on.

The install goes as Helm's would: the installer's Secrets for PostgreSQL and Redis, the pre-install hook
(`ringpilot migrate` on an empty database), then every rendered object applied with `kubectl apply
--server-side`. The controller, both workers and the gateway are started from their rendered Deployments,
each as the chart's ServiceAccount with the chart's environment (tests/chart/podrunner.py). The emulator serves no
PodDisruptionBudget or Job kind: the PDBs are checked by the render tests, and the hook Job is run as a pod.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from kubernetes import client

from controller.api.policy import load_policy
from controller.devkit.identities import prepare_identities, start_secured_emulator
from controller.devkit.kubelet import SimulatedKubelet
from controller.devkit.processes import ProcessGroup
from controller.devkit.seeding import RING_NAMESPACES, seed_rings
from controller.storage.db import connect, with_database
from tests.chart.chartrender import NAMESPACE, REQUIRED, merged, named, of_kind, render
from tests.chart.podrunner import PodRunner
from tests.fixtures.services import ServiceUrls, create_database, drop_database
from tests.fixtures.stack import POLICY, redis_db, wait_for

pytestmark = pytest.mark.e2e
GROUP, VERSION = "ringpilot.dev", "v1alpha1"
NOT_SERVED = {"PodDisruptionBudget", "Job"}  # kinds the emulator does not serve (see the module docstring)
REDIS_DB = 9


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Installed:
    root: Path
    kubeconfig: Path
    api: client.ApiClient
    database_url: str
    pods: PodRunner
    docs: list[dict[str, Any]]
    values: dict[str, Any]
    liveness_port: int
    gateway_url: str
    tokens: dict[str, str]

    def kubectl(
        self, *args: str, stdin: str | None = None, user: str | None = None, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        context = ["--context", user] if user else []
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(kubeconfig or self.kubeconfig), *context, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def pod_kubeconfig(self, pod: str) -> Path:
        return self.root / "pods" / pod / "kubeconfig"


def chart_values(webhook_port: int, liveness_port: int) -> dict[str, Any]:
    """The defaults, plus what this machine needs: the e2e policy (short soaks, dev users) and free ports."""
    policy = yaml.safe_load(POLICY.read_text())
    policy.pop("identity")  # the chart writes its own
    return merged(
        REQUIRED,
        {
            "policy": {"config": policy},
            "webhook": {"port": webhook_port},
            "controller": {"livenessPort": liveness_port, "metricsPort": free_port(), "resyncIntervalSeconds": 2},
            "worker": {"metricsPort": free_port()},
            # tokens, not the default kubernetes mode: see test_a_chat_through_the_gateway_...
            "gateway": {"auth": {"mode": "tokens", "tokens": {"existingSecret": "ringpilot-gateway-tokens"}}},
        },
    )


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def gateway_ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/api/v1/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def installed(service_urls: ServiceUrls) -> Iterator[Installed]:
    root = Path(tempfile.mkdtemp(prefix="ringpilot-chart-e2e-"))
    dbname = f"rp_chart_{uuid.uuid4().hex[:10]}"
    create_database(service_urls.database_url, dbname, "template0")  # empty: the hook migrates it
    database_url = with_database(service_urls.database_url, dbname)
    group = ProcessGroup()
    kubelet: SimulatedKubelet | None = None
    identities = prepare_identities(root / "identity", load_policy(POLICY))
    webhook_port, liveness_port = free_port(), free_port()
    try:
        kubeconfig = root / "kubeconfig"
        _, server, api = start_secured_emulator(group, kubeconfig, identities, webhook_port, root / "emulator.log")
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        for name, key, url in (
            ("ringpilot-db", "database-url", database_url),
            ("ringpilot-redis", "redis-url", redis_db(service_urls.redis_url, REDIS_DB)),
        ):
            data = {key: base64.b64encode(url.encode()).decode()}
            core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": name}, "data": data})
        entries = [
            {"sha256": hashlib.sha256(token.encode()).hexdigest(), "user": user, "groups": []}
            for user, token in identities.tokens.items()
        ]
        tokens_yaml = base64.b64encode(yaml.safe_dump(entries).encode()).decode()
        secret = {"metadata": {"name": "ringpilot-gateway-tokens"}, "data": {"tokens.yaml": tokens_yaml}}
        core.create_namespaced_secret(NAMESPACE, secret)
        values = chart_values(webhook_port, liveness_port)
        docs = render(values)
        pods = PodRunner(root / "pods", api, server, identities.ca_file, group)
        # pre-install hook: the migrate Job's pod, to completion
        hook = pods.start(named(docs, "Job", "ringpilot-migrate"), "ringpilot-migrate-0")
        assert hook.process.wait(120) == 0, f"the migrate hook failed; see {hook.log_path}"
        manifests = root / "manifests.yaml"
        manifests.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] not in NOT_SERVED]))
        gateway_port = free_port()
        done = Installed(
            root, kubeconfig, api, database_url, pods, docs, values, liveness_port,
            f"http://127.0.0.1:{gateway_port}", identities.tokens,
        )  # fmt: skip
        applied = done.kubectl("apply", "--server-side", "--field-manager=helm", "-f", str(manifests))
        assert applied.returncode == 0, applied.stderr
        seed_rings(api)
        kubelet = SimulatedKubelet(api, rollout_delay_seconds=0.2)
        kubelet.start()
        controller = named(docs, "Deployment", "ringpilot-controller")
        pods.start(controller)
        pods.overrides["ringpilot-worker-steps-0"] = {"RINGPILOT_METRICS_PORT": str(free_port())}
        for queue in ("turns", "steps"):
            pods.start(named(docs, "Deployment", f"ringpilot-worker-{queue}"))
        wait_for(lambda: healthy(liveness_port), 90, 0.2, "the controller's /healthz (webhooks included)")
        pods.overrides["ringpilot-gateway-0"] = {"RINGPILOT_GATEWAY_PORT": str(gateway_port)}
        pods.start(named(docs, "Deployment", "ringpilot-gateway"))
        wait_for(lambda: gateway_ready(done.gateway_url), 90, 0.2, "the gateway's /api/v1/health")
        yield done
    finally:
        if kubelet is not None:
            kubelet.stop()
        group.stop_all()
        drop_database(service_urls.database_url, dbname)
        if os.environ.get("RINGPILOT_KEEP_E2E_LOGS"):
            print(f"chart e2e files kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def test_the_pre_install_hook_migrated_the_empty_database(installed: Installed) -> None:
    with connect(installed.database_url) as conn:
        applied = conn.execute("SELECT count(*) AS n FROM schema_migrations").fetchone()
    assert applied is not None and applied["n"] > 0


def test_each_component_is_its_own_service_account_with_no_more_rights(installed: Installed) -> None:
    for pod, account in (
        ("ringpilot-controller-0", "ringpilot-controller"),
        ("ringpilot-worker-steps-0", "ringpilot-worker"),
    ):
        path = installed.pod_kubeconfig(pod)
        whoami = json.loads(installed.kubectl("auth", "whoami", "-o", "json", kubeconfig=path).stdout)
        assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{NAMESPACE}:{account}"
        for verb, resource in (("delete", "deployments.apps"), ("create", "clusterroles"), ("get", "secrets")):
            answer = installed.kubectl("auth", "can-i", verb, resource, "-n", "ring-0-lab", kubeconfig=path)
            assert answer.stdout.strip() == "no", f"{account} may {verb} {resource}"
    worker = installed.pod_kubeconfig("ringpilot-worker-steps-0")
    rollout = installed.kubectl("auth", "can-i", "patch", "deployments.apps", "-n", "ring-1-canary", kubeconfig=worker)
    assert rollout.stdout.strip() == "yes"


def _pod_template(api: client.ApiClient, ring: int) -> dict[str, Any]:
    deployment = client.AppsV1Api(api).read_namespaced_deployment("web", RING_NAMESPACES[ring])
    template: dict[str, Any] = api.sanitize_for_serialization(deployment.spec.template)
    return template


def test_a_deployment_task_ships_through_rings_0_and_1(installed: Installed) -> None:
    before = {ring: _pod_template(installed.api, ring) for ring in (0, 1, 2)}
    doc = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DeploymentTask",
        "metadata": {"name": "web-through-the-chart", "namespace": "default"},
        "spec": {
            "app": "web",
            "version": "2.0.0",
            "maxRing": 1,
            "requestedBy": "dev-publisher",
            "monitor": {"pollIntervalSeconds": 1, "deployTimeoutSeconds": 30},
        },
    }
    created = installed.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), user="dev-publisher")
    assert created.returncode == 0, created.stderr
    custom = client.CustomObjectsApi(installed.api)

    def status() -> dict[str, Any]:
        task = custom.get_namespaced_custom_object(
            GROUP, VERSION, "default", "deploymenttasks", doc["metadata"]["name"]
        )
        return dict(task.get("status") or {})

    wait_for(lambda: status().get("phase") == "Succeeded", 120, 0.3, f"the task to succeed (last: {status()})")
    after = {ring: _pod_template(installed.api, ring) for ring in (0, 1, 2)}
    assert after[0] != before[0] and after[1] != before[1], "rings 0 and 1 were not rolled out"
    assert after[2] == before[2], "ring 2 changed although maxRing is 1"


def test_a_forged_cab_decision_is_refused_by_the_charts_webhooks(installed: Installed) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ChangeRequest",
        "metadata": {"name": "cab-through-the-chart"},
        "spec": {
            "task": "no-such-task",
            "app": "web",
            "version": "9.9.9",
            "maxRing": 2,
            "riskScore": 70,
            "planDigest": "c" * 64,
            "requiredApprovals": 1,
            "submittedBy": "dev-approver-2",
            "decisions": [],
        },
    }
    created = installed.kubectl(
        "create", "-n", "default", "-f", "-", stdin=yaml.safe_dump(body),
        kubeconfig=installed.pod_kubeconfig("ringpilot-controller-0"),
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    forged = [{"op": "add", "path": "/spec/decisions/-", "value": {"approver": "dev-approver", "decision": "Approve"}}]
    refused = installed.kubectl(
        "patch", "changerequest", "cab-through-the-chart", "-n", "default", "--type=json", "-p", json.dumps(forged),
        user="dev-approver-2",
    )  # fmt: skip
    assert refused.returncode != 0
    assert 'admission webhook "guard-decisions.ringpilot.dev" denied the request' in refused.stderr
    assert "'dev-approver-2' submitted this change and may not decide" in refused.stderr
    change = client.CustomObjectsApi(installed.api).get_namespaced_custom_object(
        GROUP, VERSION, "default", "changerequests", "cab-through-the-chart"
    )
    assert change["spec"]["decisions"] == []


def test_an_upgrade_that_changes_a_crd_keeps_the_stored_objects(installed: Installed) -> None:
    upgraded = render(installed.values, upgrade=True)
    crd = next(
        c for c in of_kind(upgraded, "CustomResourceDefinition") if c["spec"]["names"]["kind"] == "DeploymentTask"
    )
    crd["spec"]["versions"][0]["additionalPrinterColumns"].append(
        {"name": "Upgraded", "type": "string", "jsonPath": ".spec.app"}
    )
    applied = installed.kubectl("apply", "--server-side", "--field-manager=helm", "-f", "-", stdin=yaml.safe_dump(crd))
    assert applied.returncode == 0, applied.stderr
    columns = wait_for(
        lambda: "UPGRADED" in (out := installed.kubectl("get", "dtask", "-n", "default").stdout) and out,
        30,
        0.2,
        "the upgraded CRD to be served",
    )
    assert "web-through-the-chart" in columns
    task = client.CustomObjectsApi(installed.api).get_namespaced_custom_object(
        GROUP, VERSION, "default", "deploymenttasks", "web-through-the-chart"
    )
    assert task["status"]["phase"] == "Succeeded"


def test_a_chat_through_the_gateway_proposes_and_confirms_a_deploy(installed: Installed) -> None:
    """In the gateway's tokens mode: its kubernetes mode (the chart's default) sends the caller's writes with
    'Bearer Bearer <the gateway's own token>' when its own credentials are a token (in-cluster, kubeconfig),
    because the client's refresh_api_key_hook is copied into the caller's configuration (agent/gateway/wiring.py)."""
    headers = {"Authorization": f"Bearer {installed.tokens['dev-publisher']}"}
    url = f"{installed.gateway_url}/api/v1/conversations"
    whoami = requests.get(f"{installed.gateway_url}/api/v1/whoami", headers=headers, timeout=10).json()
    assert (whoami["user"], whoami["authenticatedBy"]) == ("dev-publisher", "token")
    made = requests.post(url, json={"text": "deploy web 2.1.0 to ring 0"}, headers=headers, timeout=10)
    assert made.status_code == 201, made.text
    name = made.json()["name"]

    def view() -> dict[str, Any]:
        answer: dict[str, Any] = requests.get(f"{url}/{name}", headers=headers, timeout=10).json()
        return answer

    pending = wait_for(lambda: view().get("pending"), 60, 0.3, "the worker's deploy proposal")
    assert pending["tool"] == "deploy"
    confirmed = requests.post(
        f"{url}/{name}/confirmations",
        json={"pendingId": pending["pendingId"], "decision": "confirm"},
        headers=headers,
        timeout=10,
    )
    assert confirmed.status_code == 202, confirmed.text
    [link] = wait_for(lambda: view().get("resources"), 60, 0.3, "the DeploymentTask the confirmation created")
    assert link["kind"] == "DeploymentTask"
    custom = client.CustomObjectsApi(installed.api)

    def task() -> dict[str, Any]:
        body: dict[str, Any] = custom.get_namespaced_custom_object(
            GROUP, VERSION, "default", "deploymenttasks", link["name"]
        )
        return body

    assert task()["spec"]["requestedBy"] == "dev-publisher"  # the worker acted as her, not as itself
    wait_for(lambda: (task().get("status") or {}).get("phase") == "Succeeded", 120, 0.3, "the chat's task to succeed")
