"""`ringpilot dev`: the whole system on one machine with nothing installed but Python.

Starts embedded PostgreSQL and Redis, the Kubernetes API emulator (HTTPS, a token per dev user,
RBAC), the simulated kubelet, the controller (serving the admission webhooks), a worker and the chat
gateway, each under its own ServiceAccount (the gateway takes the dev users' tokens, written one file
per user to `<data-dir>/tokens/`); applies the CRDs, Ringpilot's RBAC, ring namespaces 0-4 with sample apps, and
(on first start) the samples, each as its author. State lives in the data directory and survives
restarts; Ctrl-C stops every child process.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from controller.api.group import GROUP, VERSION
from controller.api.policy import load_policy
from controller.devkit.embedded import EmbeddedError, EmbeddedServices
from controller.devkit.identities import (
    CLUSTER_ADMIN_USER,
    component_environments,
    prepare_identities,
    sample_author,
    start_secured_emulator,
    write_gateway_tokens,
)
from controller.devkit.kubelet import SimulatedKubelet
from controller.devkit.processes import ProcessGroup
from controller.devkit.seeding import apply_crds, seed_rings
from controller.storage.migrating import migrate

SAMPLES = Path(__file__).resolve().parents[2] / "crds" / "samples"


def apply_samples(clients: dict[str, client.ApiClient], directory: Path = SAMPLES) -> list[str]:
    """Create each sample object that does not exist yet, as its author (`clients` by user); returns the names."""
    created = []
    for path in sorted(directory.glob("*.yaml")):
        body: dict[str, Any] = yaml.safe_load(path.read_text())
        custom = client.CustomObjectsApi(clients[sample_author(body)])
        plural = body["kind"].lower() + "s"
        namespace = body["metadata"].get("namespace", "default")
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
            created.append(f"{body['kind']}/{body['metadata']['name']}")
        except client.exceptions.ApiException as error:
            if error.status != 409:
                raise
    return created


def child_env(services: EmbeddedServices, own: dict[str, str], data_dir: Path) -> dict[str, str]:
    """A component's environment: the embedded services and its own identity (`own`: KUBECONFIG, webhooks)."""
    env = dict(os.environ)
    env.update(
        {
            **own,
            "RINGPILOT_DATABASE_URL": services.database_url,
            "RINGPILOT_REDIS_URL": services.redis_url,
            "RINGPILOT_DATA_DIR": str(data_dir),
            "RINGPILOT_LIVENESS_PORT": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_webhooks(port: int, group: ProcessGroup, timeout_seconds: float) -> None:
    """Wait until the controller serves its webhooks (writes to Ringpilot's kinds fail closed until then)."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if group.first_exited() is not None:
            return
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)


def author_clients(kubeconfig: Path, own: dict[str, dict[str, str]]) -> dict[str, client.ApiClient]:
    """An ApiClient per context of the kubeconfig, and one per component (by its ServiceAccount name)."""
    loaded = yaml.safe_load(kubeconfig.read_text())
    clients = {
        c["name"]: config.new_client_from_config(config_file=str(kubeconfig), context=c["name"])
        for c in loaded["contexts"]
    }
    for env in own.values():
        clients[env["RINGPILOT_ACCOUNT"]] = config.new_client_from_config(config_file=env["KUBECONFIG"])
    return clients


def banner(
    kubeconfig: Path, logs: Path, seconds: float, metrics: dict[str, int] | None = None, gateway_port: int = 0
) -> str:
    scrape = "".join(
        f"\n  curl http://127.0.0.1:{port}/metrics   # the {name}'s metrics" for name, port in (metrics or {}).items()
    )
    chat = (
        f"""
Chat gateway: http://127.0.0.1:{gateway_port}
  Sign in with a dev user's token: {kubeconfig.parent / "tokens"}/<user> (e.g. dev-publisher)
"""
        if gateway_port
        else ""
    )
    return f"""
Ringpilot is up in {seconds:.1f}s (embedded PostgreSQL, Redis, API emulator, controller, worker, gateway).
{chat}
  export KUBECONFIG={kubeconfig}
  kubectl get ringpilot -A                      # every Ringpilot object, with its columns
  kubectl get deploy -A -l app.kubernetes.io/name=web
  kubectl --context dev-publisher apply -f crds/samples/deploymenttask.yaml && kubectl get dtask -w{scrape}

Contexts: one per dev user (dev-admin, dev-publisher, dev-approver[-2,-3], dev-operator, dev-viewer),
and {CLUSTER_ADMIN_USER} (cluster-admin, the default). `kubectl --context dev-viewer auth whoami`.
Logs: {logs}/   State: {kubeconfig.parent}/   Stop: Ctrl-C
"""


def run_dev(data_dir: Path, api_port: int = 0) -> int:
    started = time.monotonic()
    data_dir = data_dir.absolute()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    kubeconfig = data_dir / "kubeconfig"
    group = ProcessGroup()
    kubelet: SimulatedKubelet | None = None
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    services = EmbeddedServices(data_dir)
    try:
        services.start()  # takes the data directory's lock first: a second `ringpilot dev` stops here
    except EmbeddedError as error:
        print(f"ringpilot dev: {error}", file=sys.stderr)
        return 2
    try:
        kubeconfig.unlink(missing_ok=True)  # the emulator writes a fresh one for its new port
        migrate(services.database_url)
        policy = load_policy(os.environ.get("RINGPILOT_POLICY_FILE") or None)
        identities = prepare_identities(data_dir / "identity", policy)
        webhook_port = free_port()
        _, server, api_client = start_secured_emulator(
            group,
            kubeconfig,
            identities,
            webhook_port,
            logs / "emulator.log",
            port=api_port,
            extra_args=("--state", str(data_dir / "cluster.json")),
        )
        apply_crds(api_client)
        seed_rings(api_client)
        own = component_environments(api_client, policy, identities, server, webhook_port)
        kubelet = SimulatedKubelet(api_client)
        kubelet.start()
        ringpilot = [sys.executable, "-m", "controller.cli"]
        ports = {"controller": free_port(), "worker": free_port()}
        for name, port in ports.items():
            group.spawn(
                name,
                [*ringpilot, name],
                {**child_env(services, own[name], data_dir), "RINGPILOT_METRICS_PORT": str(port)},
                logs / f"{name}.log",
            )
        gateway_port = int(os.environ.get("RINGPILOT_GATEWAY_PORT") or 0) or free_port()
        gateway_env = {
            "RINGPILOT_GATEWAY_PORT": str(gateway_port),
            "RINGPILOT_GATEWAY_AUTH": "tokens",
            "RINGPILOT_GATEWAY_TOKEN_FILE": str(write_gateway_tokens(identities, data_dir / "tokens")),
        }
        group.spawn(
            "gateway",
            [*ringpilot, "gateway"],
            {**child_env(services, own["gateway"], data_dir), **gateway_env},
            logs / "gateway.log",
        )
        marker = data_dir / "samples-applied"
        if not marker.exists() and SAMPLES.exists():
            wait_for_webhooks(webhook_port, group, 60)
            apply_samples(author_clients(kubeconfig, own))
            marker.write_text("samples from crds/samples were applied once\n")
        print(banner(kubeconfig, logs, time.monotonic() - started, ports, gateway_port), flush=True)
        while not stopping:
            dead = group.first_exited()
            if dead is not None:
                print(f"{dead.name} exited with code {dead.process.returncode}; see {dead.log_path}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print("Stopping Ringpilot...", flush=True)
        return 0
    finally:
        if kubelet is not None:
            kubelet.stop()
        group.stop_all()
        services.stop()
