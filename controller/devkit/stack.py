"""`ringpilot dev`: the whole system on one machine with nothing installed but Python.

Starts embedded PostgreSQL and Redis, the Kubernetes API emulator (HTTPS, a token per dev user,
RBAC), the simulated kubelet, the controller (serving the admission webhooks), a worker and the chat
gateway, each under its own ServiceAccount (the gateway takes the dev users' tokens, written one file
per user to `<data-dir>/tokens/`); applies the CRDs, Ringpilot's RBAC, ring namespaces 0-4 with sample
apps, and (on first start) the samples, each as its author. State lives in the data directory
(`--data-dir`, else `RINGPILOT_DATA_DIR`, else `./.ringpilot`) and survives restarts. Every child dies
with us (even after a `kill -9`), a crashed one is restarted with backoff (supervision.py), a start
while processes of an earlier run still hold the data directory is refused naming them, and each child
sees only the secrets it uses. Ctrl-C stops every child process.
"""

from __future__ import annotations

import os
import re
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
from controller.devkit.processes import Child, ProcessGroup, holders
from controller.devkit.seeding import apply_crds, seed_rings
from controller.devkit.supervision import ChildUnit, ServerUnit, Supervisor
from controller.storage.migrating import migrate

SAMPLES = Path(__file__).resolve().parents[2] / "crds" / "samples"
#: Kinds only the controller creates: their samples show the shape, and the controller opens the real ones.
CONTROLLER_OPENED = ("ChangeRequest",)


def apply_samples(clients: dict[str, client.ApiClient], directory: Path = SAMPLES) -> list[str]:
    """Create each sample object that does not exist yet, as its author (`clients` by user); returns the names.

    A ChangeRequest sample is skipped: the controller opens the real one for its sample task.
    """
    created = []
    for path in sorted(directory.glob("*.yaml")):
        body: dict[str, Any] = yaml.safe_load(path.read_text())
        if body["kind"] in CONTROLLER_OPENED:
            continue
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


#: A variable whose name says it holds a secret; a child sees one only if `CHILD_SECRETS` names it.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|DATABASE_URL|REDIS_URL", re.IGNORECASE)
_LLM_KEYS = ("RINGPILOT_ANTHROPIC_API_KEY", "RINGPILOT_OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_API_KEY")
#: The secrets each child uses: the stores' URLs (they carry the password) and the language model's keys.
CHILD_SECRETS: dict[str, tuple[str, ...]] = {
    "controller": ("RINGPILOT_DATABASE_URL", "RINGPILOT_REDIS_URL"),
    "worker": ("RINGPILOT_DATABASE_URL", "RINGPILOT_REDIS_URL", *_LLM_KEYS),
    "gateway": ("RINGPILOT_DATABASE_URL", "RINGPILOT_REDIS_URL"),
}


def scrubbed_environment(name: str, secrets: dict[str, str]) -> dict[str, str]:
    """Our environment without any secret, plus those of `secrets` that `CHILD_SECRETS` gives child `name`."""
    env = {key: value for key, value in os.environ.items() if not SECRET_NAME.search(key)}
    allowed = CHILD_SECRETS.get(name, ())
    env.update({key: value for key, value in secrets.items() if key in allowed})
    return env


def child_env(
    services: EmbeddedServices, own: dict[str, str], data_dir: Path, name: str = "controller"
) -> dict[str, str]:
    """Child `name`'s environment: the embedded services it uses, its own identity (`own`: KUBECONFIG, webhooks)."""
    secrets = {key: os.environ[key] for key in _LLM_KEYS if os.environ.get(key)}
    secrets |= {"RINGPILOT_DATABASE_URL": services.database_url, "RINGPILOT_REDIS_URL": services.redis_url}
    env = scrubbed_environment(name, secrets)
    env.update({**own, "RINGPILOT_DATA_DIR": str(data_dir), "RINGPILOT_LIVENESS_PORT": "0", "PYTHONUNBUFFERED": "1"})
    return env


def resolve_data_dir(flag: str | None) -> Path:
    """`--data-dir` if given, else `RINGPILOT_DATA_DIR`, else `./.ringpilot`; absolute."""
    return Path(flag or os.environ.get("RINGPILOT_DATA_DIR") or ".ringpilot").absolute()


def refuse_leftovers(data_dir: Path) -> str | None:
    """Why not to start: the processes of an earlier run that still hold `data_dir`, or None."""
    found = holders(str(data_dir))
    if not found:
        return None
    listing = "\n".join(f"  pid {pid}: {command[:160]}" for pid, command in sorted(found.items()))
    pids = " ".join(str(pid) for pid in sorted(found))
    return f"processes of an earlier run still hold {data_dir}:\n{listing}\nStop them (kill {pids}) and start again."


def pin_emulator(emulator: Child, server: str, scratch_kubeconfig: Path) -> None:
    """Restart the emulator on the port its clients know, writing its kubeconfig aside (ours has the tokens)."""
    argv = list(emulator.argv)
    argv[argv.index("--port") + 1] = server.rsplit(":", 1)[1].rstrip("/")
    argv[argv.index("--kubeconfig") + 1] = str(scratch_kubeconfig)
    emulator.argv = argv


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
  kubectl get dtask -w                          # the sample rollouts (applied once; see the README's tour){scrape}

Contexts: one per dev user (dev-admin, dev-publisher, dev-approver[-2,-3], dev-operator, dev-viewer),
and {CLUSTER_ADMIN_USER} (cluster-admin, the default). `kubectl --context dev-viewer auth whoami`.
Logs: {logs}/   State: {kubeconfig.parent}/   Stop: Ctrl-C
"""


def run_dev(data_dir: Path | None = None, api_port: int = 0) -> int:
    started = time.monotonic()
    data_dir = resolve_data_dir(str(data_dir) if data_dir is not None else None)
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    kubeconfig = data_dir / "kubeconfig"
    group = ProcessGroup(owner=str(data_dir))
    kubelet: SimulatedKubelet | None = None
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    services = EmbeddedServices(data_dir)
    try:
        services.acquire_lock()  # a second `ringpilot dev` on this data directory stops here
        leftovers = refuse_leftovers(data_dir)
        if leftovers is not None:
            services.stop()
            print(f"ringpilot dev: {leftovers}", file=sys.stderr)
            return 2
        services.start()
    except EmbeddedError as error:
        print(f"ringpilot dev: {error}", file=sys.stderr)
        return 2
    try:
        kubeconfig.unlink(missing_ok=True)  # the emulator writes a fresh one for its new port
        migrate(services.database_url)
        policy = load_policy(os.environ.get("RINGPILOT_POLICY_FILE") or None)
        identities = prepare_identities(data_dir / "identity", policy)
        webhook_port = free_port()
        emulator, server, api_client = start_secured_emulator(
            group,
            kubeconfig,
            identities,
            webhook_port,
            logs / "emulator.log",
            port=api_port,
            extra_args=("--state", str(data_dir / "cluster.json")),
            env=child_env(services, {}, data_dir, "emulator"),
        )
        pin_emulator(emulator, server, data_dir / "emulator-kubeconfig")
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
                {**child_env(services, own[name], data_dir, name), "RINGPILOT_METRICS_PORT": str(port)},
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
            {**child_env(services, own["gateway"], data_dir, "gateway"), **gateway_env},
            logs / "gateway.log",
        )
        marker = data_dir / "samples-applied"
        if not marker.exists() and SAMPLES.exists():
            wait_for_webhooks(webhook_port, group, 60)
            apply_samples(author_clients(kubeconfig, own))
            marker.write_text("samples from crds/samples were applied once\n")
        print(banner(kubeconfig, logs, time.monotonic() - started, ports, gateway_port), flush=True)
        supervisor = Supervisor([ServerUnit(server) for server in services.servers])
        for child in group.children:
            supervisor.add(ChildUnit(group, child))
        while not stopping:
            supervisor.check()
            time.sleep(0.2)
        print("Stopping Ringpilot...", flush=True)
        return 0
    finally:
        if kubelet is not None:
            kubelet.stop()
        group.stop_all()
        services.stop()
