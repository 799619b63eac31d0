"""Baselines of the stack that every Ringpilot benchmark is compared with, measured in its own run.

`kopf_objects_per_second`: a bare Kopf handler (one status patch per object) on the API emulator.
`dramatiq_messages_per_second`: bare no-op messages on the Redis broker, one worker process.
Other scripts in bench/ import these so ratios come from the same machine and the same run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config

from controller.devkit.embedded import EmbeddedServices
from controller.devkit.processes import ProcessGroup, wait_for_file

HERE = Path(__file__).resolve().parent
GROUP = "bench.ringpilot.dev"
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"items.{GROUP}"},
    "spec": {
        "group": GROUP,
        "names": {"kind": "Item", "plural": "items", "singular": "item", "listKind": "ItemList"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"n": {"type": "integer"}}},
                            "status": {"type": "object", "properties": {"done": {"type": "boolean"}}},
                        },
                    }
                },
            }
        ],
    },
}


#: A write request in the emulator's --verbose access log: time, verb, path, user agent.
ACCESS_WRITE = re.compile(
    r'^(\S+ \S+) INFO aiohttp\.access: .*?"(POST|PUT|PATCH|DELETE) (\S+) HTTP/[^"]*" \d+ \S+ "[^"]*" "([^"]*)"'
)


def write_requests(emulator_log: Path) -> Iterator[tuple[float, str, str, str]]:
    """(time.time(), verb, path, user agent) of each write the emulator served, from its --verbose log."""
    with emulator_log.open(encoding="utf-8", errors="replace") as lines:
        for text in lines:
            match = ACCESS_WRITE.match(text)
            if match is not None:
                at = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                yield at, match[2], match[3], match[4]


def start_emulator(group: ProcessGroup, workdir: Path, verbose: bool = False) -> client.ApiClient:
    """The API emulator in its own process; `verbose` logs every request to `workdir/emulator.log`."""
    kubeconfig = workdir / "kubeconfig"
    emulator = group.spawn(
        "emulator",
        [
            sys.executable,
            "-m",
            "controller.devkit.emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
            *(["--verbose"] if verbose else []),
        ],
        dict(os.environ),
        workdir / "emulator.log",
    )
    wait_for_file(kubeconfig, 30, emulator)
    return config.new_client_from_config(config_file=str(kubeconfig))


def kopf_objects_per_second(count: int = 300) -> float:
    """Objects/s from create to status patched by a bare Kopf operator (3 processes, 2 cores)."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        group = ProcessGroup()
        try:
            api = start_emulator(group, workdir)
            client.ApiextensionsV1Api(api).create_custom_resource_definition(CRD)  # type: ignore[arg-type]
            env = {**os.environ, "KUBECONFIG": str(workdir / "kubeconfig")}
            group.spawn(
                "kopf",
                [sys.executable, "-m", "kopf", "run", "-A", "--standalone", "--quiet", str(HERE / "bare_operator.py")],
                env,
                workdir / "kopf.log",
            )
            custom = client.CustomObjectsApi(api)
            time.sleep(2.0)  # let the operator start watching
            started = time.monotonic()
            for i in range(count):
                custom.create_namespaced_custom_object(
                    GROUP,
                    "v1",
                    "default",
                    "items",
                    {"apiVersion": f"{GROUP}/v1", "kind": "Item", "metadata": {"name": f"i{i}"}, "spec": {"n": i}},
                )
            while True:
                items = custom.list_namespaced_custom_object(GROUP, "v1", "default", "items")["items"]
                if sum(1 for it in items if (it.get("status") or {}).get("done")) >= count:
                    break
                if time.monotonic() - started > 300:
                    raise TimeoutError("bare Kopf operator did not finish")
                time.sleep(0.05)
            return count / (time.monotonic() - started)
        finally:
            group.stop_all()


def dramatiq_messages_per_second(count: int = 5000) -> float:
    """No-op messages/s drained by one worker process (4 threads) on the Redis broker."""
    import dramatiq

    from controller.messaging.broker import build_broker

    with tempfile.TemporaryDirectory() as tmp, EmbeddedServices(Path(tmp), durable=False) as services:
        broker = build_broker(services.redis_url)
        noop = dramatiq.actor(lambda: None, actor_name="bench.noop", queue_name="bench", broker=broker)
        for _ in range(count):
            noop.send()
        env = {**os.environ, "RINGPILOT_REDIS_URL": services.redis_url, "PYTHONPATH": str(HERE)}
        started = time.monotonic()
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dramatiq",
                "noop_worker",
                "--processes",
                "1",
                "--threads",
                "4",
                "--queues",
                "bench",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            key = f"{broker.namespace}:bench.msgs"
            redis = broker.client
            while redis.llen(f"{broker.namespace}:bench") or redis.hlen(key):
                if time.monotonic() - started > 300:
                    raise TimeoutError("dramatiq worker did not drain the queue")
                time.sleep(0.02)
            return count / (time.monotonic() - started)
        finally:
            worker.terminate()
            worker.wait(30)
            broker.close()


def measure() -> dict[str, float]:
    return {
        "kopf_objects_per_second": kopf_objects_per_second(),
        "dramatiq_messages_per_second": dramatiq_messages_per_second(),
    }
