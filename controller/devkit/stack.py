"""`ringpilot dev`: the whole system on one machine with nothing installed but Python.

Starts embedded PostgreSQL and Redis, the Kubernetes API emulator, the simulated kubelet,
the controller and a worker; applies the CRDs, ring namespaces 0-4 with sample apps, and
(on first start) the samples. State lives in the data directory and survives restarts;
Ctrl-C stops every child process.
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
from controller.devkit.embedded import EmbeddedError, EmbeddedServices
from controller.devkit.kubelet import SimulatedKubelet
from controller.devkit.processes import ProcessGroup, wait_for_file
from controller.devkit.seeding import apply_crds, seed_rings
from controller.storage.migrating import migrate

SAMPLES = Path(__file__).resolve().parents[2] / "crds" / "samples"


def apply_samples(api_client: client.ApiClient, directory: Path = SAMPLES) -> list[str]:
    """Create each sample object that does not exist yet; returns the names created."""
    custom = client.CustomObjectsApi(api_client)
    created = []
    for path in sorted(directory.glob("*.yaml")):
        body: dict[str, Any] = yaml.safe_load(path.read_text())
        plural = body["kind"].lower() + "s"
        namespace = body["metadata"].get("namespace", "default")
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
            created.append(f"{body['kind']}/{body['metadata']['name']}")
        except client.exceptions.ApiException as error:
            if error.status != 409:
                raise
    return created


def child_env(services: EmbeddedServices, kubeconfig: Path, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "KUBECONFIG": str(kubeconfig),
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


def banner(kubeconfig: Path, logs: Path, seconds: float, metrics: dict[str, int] | None = None) -> str:
    scrape = "".join(
        f"\n  curl http://127.0.0.1:{port}/metrics   # the {name}'s metrics" for name, port in (metrics or {}).items()
    )
    return f"""
Ringpilot is up in {seconds:.1f}s (embedded PostgreSQL, Redis, API emulator, controller, worker).

  export KUBECONFIG={kubeconfig}
  kubectl get ringpilot -A                      # every Ringpilot object, with its columns
  kubectl get deploy -A -l app.kubernetes.io/name=web
  kubectl apply -f crds/samples/deploymenttask.yaml && kubectl get dtask -w{scrape}

Dev users (one per role): dev-admin, dev-publisher, dev-approver, dev-operator, dev-viewer.
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
        emulator = group.spawn(
            "emulator",
            [
                sys.executable,
                "-m",
                "controller.devkit.emulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--kubeconfig",
                str(kubeconfig),
                "--state",
                str(data_dir / "cluster.json"),
            ],
            dict(os.environ),
            logs / "emulator.log",
        )
        wait_for_file(kubeconfig, 30, emulator)
        api_client = config.new_client_from_config(config_file=str(kubeconfig))
        apply_crds(api_client)
        seed_rings(api_client)
        marker = data_dir / "samples-applied"
        if not marker.exists() and SAMPLES.exists():
            apply_samples(api_client)
            marker.write_text("samples from crds/samples were applied once\n")
        kubelet = SimulatedKubelet(api_client)
        kubelet.start()
        env = child_env(services, kubeconfig, data_dir)
        ringpilot = [sys.executable, "-m", "controller.cli"]
        ports = {"controller": free_port(), "worker": free_port()}
        for name, port in ports.items():
            group.spawn(name, [*ringpilot, name], {**env, "RINGPILOT_METRICS_PORT": str(port)}, logs / f"{name}.log")
        print(banner(kubeconfig, logs, time.monotonic() - started, ports), flush=True)
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
