"""Running a rendered Deployment's container as a local process, the way a kubelet would start its pod.

`PodRunner.start(deployment)` reads the pod spec as the chart rendered it and as applied to the emulator:
its container `args` become `python -m controller.cli ARGS`; `env` values are passed as written,
`secretKeyRef`s are read from the Secret in the emulator and `fieldRef: metadata.name` is the pod name;
each volume (emptyDir, ConfigMap, Secret) becomes a directory, and every variable naming a path under a
mount is pointed at that directory. The pod's Kubernetes credentials are a TokenRequest token of its
`serviceAccountName` (what the kubelet mounts), given to the process as its kubeconfig; a pod that
mounts no token (the migrate Job) gets none.
"""

from __future__ import annotations

import base64
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from controller.devkit.identities import write_kubeconfig
from controller.devkit.processes import Child, ProcessGroup

Json = dict[str, Any]


@dataclass
class PodRunner:
    """Starts pods of rendered Deployments in `root`, with `api` (cluster-admin) for Secrets and tokens."""

    root: Path
    api: client.ApiClient
    server: str
    ca_file: Path
    group: ProcessGroup
    #: Per pod name: variables to override (on one machine every pod shares the loopback, so ports differ).
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    started: dict[str, Child] = field(default_factory=dict)

    def _volume(self, pod_dir: Path, namespace: str, volume: Json) -> Path:
        path = pod_dir / "volumes" / volume["name"]
        path.mkdir(parents=True, exist_ok=True)
        core = client.CoreV1Api(self.api)
        if "configMap" in volume:
            config = core.read_namespaced_config_map(volume["configMap"]["name"], namespace)
            for key, text in (config.data or {}).items():
                (path / key).write_text(text)
        elif "secret" in volume:
            secret = core.read_namespaced_secret(volume["secret"]["secretName"], namespace)
            for key, data in (secret.data or {}).items():
                (path / key).write_bytes(base64.b64decode(data))
        elif "emptyDir" not in volume:
            raise AssertionError(f"volume {volume['name']}: only emptyDir, configMap and secret are used")
        return path

    def _value(self, namespace: str, pod: str, env: Json) -> str:
        if "value" in env:
            return str(env["value"])
        source = env["valueFrom"]
        if "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.name", source
            return pod
        ref = source["secretKeyRef"]
        secret = client.CoreV1Api(self.api).read_namespaced_secret(ref["name"], namespace)
        return base64.b64decode((secret.data or {})[ref["key"]]).decode()

    def _token(self, namespace: str, account: str) -> str:
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        }
        answer = client.CoreV1Api(self.api).create_namespaced_service_account_token(account, namespace, request)
        return str(answer.status.token)

    def environment(self, deployment: Json, pod: str) -> tuple[list[str], dict[str, str]]:
        """The command line and environment of the Deployment's first container, as pod `pod`."""
        namespace = deployment["metadata"]["namespace"]
        spec = deployment["spec"]["template"]["spec"]
        container = spec["containers"][0]
        pod_dir = self.root / pod
        volumes = {v["name"]: self._volume(pod_dir, namespace, v) for v in spec.get("volumes", [])}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}
        env = {e["name"]: self._value(namespace, pod, e) for e in container.get("env", [])}
        for name, value in env.items():
            for mount_path, local in mounts.items():
                if value == mount_path or value.startswith(mount_path + "/"):
                    env[name] = str(local) + value[len(mount_path) :]
        env.update(self.overrides.get(pod, {}))
        # Nothing of this machine's own Ringpilot or Kubernetes settings leaks in: only what the pod says.
        full = {k: v for k, v in os.environ.items() if not k.startswith(("RINGPILOT_", "KUBECONFIG"))}
        full.update(env)
        if spec.get("automountServiceAccountToken", True):
            account = spec["serviceAccountName"]
            token = self._token(namespace, account)
            full["KUBECONFIG"] = str(
                write_kubeconfig(pod_dir / "kubeconfig", self.server, self.ca_file, {account: token}, account)
            )
        else:
            full["KUBECONFIG"] = str(pod_dir / "no-kubeconfig")  # a pod without a token has no credentials
        return [sys.executable, "-m", "controller.cli", *container["args"]], full

    def start(self, deployment: Json, pod: str | None = None) -> Child:
        """Start one pod of `deployment` (named `<deployment>-0` unless told)."""
        pod = pod or f"{deployment['metadata']['name']}-0"
        argv, env = self.environment(deployment, pod)
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        child = self.group.spawn(pod, argv, env, self.root / "logs" / f"{pod}.log")
        self.started[pod] = child
        return child
