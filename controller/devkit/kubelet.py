"""A simulated kubelet for `ringpilot dev` and the tests only: there are no nodes or pods here.

It watches Deployments through the Kubernetes API and writes the status a real cluster
would: after a short rollout delay, every replica is updated, ready and available. Failures
are injected with annotations, on a Namespace (every workload in it) or on a Deployment:

* `kubelet.ringpilot.dev/fail: CrashLoop|NeverReady` fails the workload while it is set;
  with `kubelet.ringpilot.dev/fail-version: <tag>` only while its image has that tag.
* `kubelet.ringpilot.dev/fail-until-restart: CrashLoop` (Deployment only) fails it until its
  pod template next changes (a rollout restart or an image update clears it).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from controller.api.labels import (
    KUBELET_FAIL_ANNOTATION,
    KUBELET_FAIL_UNTIL_RESTART_ANNOTATION,
    KUBELET_FAIL_VERSION_ANNOTATION,
)

logger = logging.getLogger(__name__)

MODES = ("CrashLoop", "NeverReady")


def image_tag(image: str) -> str:
    """The tag of an image reference ('' when it has none)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""


@dataclass
class Failures:
    """Which failure mode applies to one Deployment, and from which template generation."""

    namespace_annotations: dict[str, dict[str, str]] = field(default_factory=dict)
    restart_marks: dict[tuple[str, str], int] = field(default_factory=dict)

    def mode_for(self, deployment: dict[str, Any]) -> str | None:
        meta = deployment["metadata"]
        key = (meta["namespace"], meta["name"])
        annotations = meta.get("annotations") or {}
        containers = deployment["spec"]["template"]["spec"].get("containers") or [{}]
        tag = image_tag(containers[0].get("image", ""))
        generation = int(meta.get("generation") or 1)
        for source in (annotations, self.namespace_annotations.get(meta["namespace"], {})):
            mode = source.get(KUBELET_FAIL_ANNOTATION)
            if mode in MODES and source.get(KUBELET_FAIL_VERSION_ANNOTATION, tag) == tag:
                return str(mode)
        transient = annotations.get(KUBELET_FAIL_UNTIL_RESTART_ANNOTATION)
        if transient in MODES:
            marked = self.restart_marks.setdefault(key, generation)
            if generation <= marked:
                return str(transient)
        else:
            self.restart_marks.pop(key, None)
        return None


def desired_status(deployment: dict[str, Any], mode: str | None, now: datetime) -> dict[str, Any]:
    """The Deployment status a cluster would report in `mode` (None = healthy)."""
    replicas = int(deployment["spec"].get("replicas", 1) or 0)
    generation = int(deployment["metadata"].get("generation") or 1)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    healthy = mode is None
    ready = replicas if healthy else 0
    old = {c.get("type"): c for c in (deployment.get("status") or {}).get("conditions") or []}

    def condition(type_: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
        status = "True" if ok else "False"
        previous = old.get(type_, {})
        since = previous.get("lastTransitionTime") if previous.get("status") == status else stamp
        return {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastUpdateTime": since,
            "lastTransitionTime": since,
        }

    why = {"CrashLoop": "CrashLoopBackOff", "NeverReady": "ReadinessProbeFailed"}.get(mode or "", "")
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "conditions": [
            condition(
                "Available",
                healthy or replicas == 0,
                "MinimumReplicasAvailable" if healthy else "MinimumReplicasUnavailable",
                "Deployment has minimum availability." if healthy else f"Pods are failing: {why}.",
            ),
            condition(
                "Progressing",
                True,
                "NewReplicaSetAvailable",
                f'ReplicaSet "{deployment["metadata"]["name"]}" has successfully progressed.',
            ),
        ],
    }
    if not healthy:
        status["unavailableReplicas"] = replicas
    return status


class SimulatedKubelet:
    """Watches Deployments and Namespaces and keeps Deployment status as a cluster would."""

    def __init__(self, api_client: client.ApiClient, rollout_delay_seconds: float = 0.3) -> None:
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.delay = rollout_delay_seconds
        self.failures = Failures()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._due: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        for target in (self._watch_namespaces, self._watch_deployments, self._tick):
            thread = threading.Thread(target=target, name=f"kubelet-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _plain(self, obj: Any) -> dict[str, Any]:
        raw: dict[str, Any] = self.apps.api_client.sanitize_for_serialization(obj)
        return raw

    def _follow(self, list_fn: Any, on_object: Any) -> None:
        """List, then watch from the list's resourceVersion; start over on any error."""
        while not self._stop.is_set():
            try:
                listing = self._plain(list_fn())
                for item in listing.get("items", []):
                    on_object(item, "LISTED")
                stream = watch.Watch().stream(
                    list_fn, resource_version=listing["metadata"].get("resourceVersion"), timeout_seconds=5
                )
                for event in stream:
                    on_object(self._plain(event["object"]), event["type"])
                    if self._stop.is_set():
                        return
            except Exception as error:  # the API may restart under us in dev
                logger.debug("Watch restarted: %s", error)
                self._stop.wait(0.5)

    def _on_namespace(self, ns: dict[str, Any], kind: str) -> None:
        name = ns["metadata"]["name"]
        annotations = dict(ns["metadata"].get("annotations") or {})
        if self.failures.namespace_annotations.get(name) == annotations:
            return  # a relist, or a change that does not touch failure injection
        self.failures.namespace_annotations[name] = annotations
        self._mark_all()

    def _on_deployment(self, deployment: dict[str, Any], kind: str) -> None:
        # Marked only when its status is not what it should be: the watch starts over every few seconds and
        # each status write comes back as an event, and reading every Deployment again each time starved a
        # new one under load.
        if kind == "DELETED" or self._wanted_status(deployment) is None:
            return
        self._mark(deployment["metadata"]["namespace"], deployment["metadata"]["name"])

    def _watch_namespaces(self) -> None:
        self._follow(self.core.list_namespace, self._on_namespace)

    def _watch_deployments(self) -> None:
        self._follow(self.apps.list_deployment_for_all_namespaces, self._on_deployment)

    def _mark(self, namespace: str, name: str) -> None:
        with self._lock:
            self._due.setdefault((namespace, name), time.monotonic() + self.delay)

    def _mark_all(self) -> None:
        try:
            listing = self._plain(self.apps.list_deployment_for_all_namespaces())
        except ApiException:
            return
        for item in listing.get("items", []):
            self._on_deployment(item, "LISTED")

    def _tick(self) -> None:
        while not self._stop.wait(0.05):
            now = time.monotonic()
            with self._lock:
                ready = [key for key, at in self._due.items() if at <= now]
                for key in ready:
                    del self._due[key]
            for namespace, name in ready:
                try:
                    self.reconcile(namespace, name)
                except Exception as error:  # a reset connection must not stop the kubelet
                    logger.warning("Could not reconcile Deployment %s/%s: %s", namespace, name, error)
                    self._mark(namespace, name)

    def _wanted_status(self, deployment: dict[str, Any]) -> dict[str, Any] | None:
        """The status to write, or None when the Deployment already has it."""
        status = desired_status(deployment, self.failures.mode_for(deployment), datetime.now(UTC))
        current = deployment.get("status") or {}
        if all(current.get(k) == v for k, v in status.items()) and "unavailableReplicas" not in (
            set(current) - set(status)
        ):
            return None
        return status

    def reconcile(self, namespace: str, name: str) -> None:
        """Write the status of one Deployment if it differs from what it should be."""
        try:
            raw = self.apps.api_client.sanitize_for_serialization(self.apps.read_namespaced_deployment(name, namespace))
        except ApiException as error:
            if error.status != 404:
                logger.warning("Could not read Deployment %s/%s: %s", namespace, name, error.reason)
            return
        status = self._wanted_status(raw)
        if status is None:
            return
        if "unavailableReplicas" not in status:
            status["unavailableReplicas"] = None
        try:
            self.apps.patch_namespaced_deployment_status(name, namespace, {"status": status})
        except ApiException as error:
            logger.warning("Could not update Deployment %s/%s: %s", namespace, name, error.reason)


def run_kubelet(kubeconfig: str) -> int:
    """`ringpilot kubelet`: run until interrupted."""
    from kubernetes import config

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    api_client = config.new_client_from_config(config_file=kubeconfig)
    kubelet = SimulatedKubelet(api_client)
    kubelet.start()
    logger.info("Simulated kubelet is running (dev and tests only)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        kubelet.stop()
    return 0
