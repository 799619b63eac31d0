"""Serving: the standalone command, kubeconfig, async and threaded modes, persistence, performance.

Covers `python -m controller.devkit.emulator`, `EmulatorServer`, `Snapshots` and list latency.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import yaml
from kubernetes import client

from controller.devkit.emulator import EmulatorServer, kubeconfig
from controller.devkit.emulator.__main__ import parse_args
from controller.devkit.emulator.preparing import WriteOptions
from controller.devkit.emulator.server import Snapshots
from tests.emulator.samples import GROUP, WIDGET_CRD, widget
from tests.fixtures.kube import api_client, make_kubectl

WIDGETS = f"/apis/{GROUP}/v1/namespaces/default/widgets"


def test_standalone_command_prints_url_and_writes_kubeconfig(tmp_path: Path) -> None:
    config = tmp_path / "kc" / "config.yaml"
    state = tmp_path / "state.json"
    command = [
        sys.executable,
        "-m",
        "controller.devkit.emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--kubeconfig",
        str(config),
        "--state",
        str(state),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        loaded = yaml.safe_load(config.read_text())
        assert loaded["clusters"][0]["cluster"]["server"] == url
        assert loaded["contexts"][0]["context"]["namespace"] == "default"
        assert loaded["users"][0]["user"] == {"token": "ringpilot-dev"}
        kubectl = make_kubectl(config, tmp_path / "cache")
        kubectl("create", "configmap", "kept", "--from-literal=a=1", check=True)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    snapshot = json.loads(state.read_text())
    assert any(o["object"]["metadata"]["name"] == "kept" for o in snapshot["objects"])


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with EmulatorServer(state_path=state) as first:
        first.apply_crd(WIDGET_CRD)
        custom = client.CustomObjectsApi(api_client(first.url))
        created = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
        rv = int(created["metadata"]["resourceVersion"])
    with EmulatorServer(state_path=state) as second:
        custom = client.CustomObjectsApi(api_client(second.url))
        again = custom.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")
        assert again["metadata"]["uid"] == created["metadata"]["uid"]
        more = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("x"))
        assert int(more["metadata"]["resourceVersion"]) > rv
        gone = requests.get(second.url + WIDGETS, params={"watch": "1", "resourceVersion": "1"}, timeout=5)
        assert '"code":410' in gone.text


async def test_snapshots_are_written_while_dirty(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    server = EmulatorServer(state_path=state, snapshot_interval_seconds=0.05)
    await server.start()
    try:
        namespace = {"metadata": {"name": "n1"}}
        async with (
            aiohttp.ClientSession() as session,
            session.post(server.url + "/api/v1/namespaces", json=namespace) as response,
        ):
            assert response.status == 201
        for _ in range(100):
            if state.exists() and "n1" in state.read_text():
                break
            await asyncio.sleep(0.02)
        assert "n1" in state.read_text()
        assert not server.cluster.store.dirty
    finally:
        await server.stop()


async def test_a_failing_periodic_save_is_retried_and_never_costs_the_final_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state.json"
    server = EmulatorServer(state_path=state, snapshot_interval_seconds=0.02)
    await server.start()
    assert server.snapshots is not None
    real_write = server.snapshots._write
    failures = 0

    def full_disk(data: bytes) -> None:
        nonlocal failures
        failures += 1
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(server.snapshots, "_write", full_disk)
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + "/api/v1/namespaces", json={"metadata": {"name": "kept"}}) as response,
    ):
        assert response.status == 201
    for _ in range(200):
        if failures >= 2:  # tried again after the first failure: the saver did not die
            break
        await asyncio.sleep(0.01)
    assert failures >= 2
    assert "Could not write the snapshot" in caplog.text
    monkeypatch.setattr(server.snapshots, "_write", real_write)
    await server.stop()
    assert "kept" in state.read_text()


def test_bad_snapshot_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not an emulator snapshot"):
        Snapshots(EmulatorServer().cluster, state).load()
    with pytest.raises(ValueError, match="not an emulator snapshot"):
        EmulatorServer(state_path=state).start_in_thread()
    snapshots = Snapshots(EmulatorServer().cluster, tmp_path / "missing" / "dir")
    assert snapshots.load() is False


def test_only_loopback_and_kubeconfig_shape() -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmulatorServer(host="0.0.0.0")
    config = kubeconfig("http://127.0.0.1:1", user="alice", namespace="ns")
    assert config["users"] == [{"name": "alice", "user": {"token": "alice"}}]
    assert EmulatorServer(host="::1", port=5).url == "http://[::1]:5"
    args = parse_args(["--port", "9", "--state", "s.json"])
    assert (args.host, args.port, args.state, args.kubeconfig) == ("127.0.0.1", 9, "s.json", None)


async def test_async_mode_in_the_running_loop() -> None:
    server = EmulatorServer()
    url = await server.start()
    try:
        server.apply_crd(WIDGET_CRD)
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer alice"}) as session:
            async with session.post(url + WIDGETS, json=widget("w")) as response:
                assert response.status == 201
            async with session.get(url + WIDGETS, params={"watch": "true"}) as response:
                line = await response.content.readline()
                assert json.loads(line)["type"] == "ADDED"
        assert server.requests[-1].user == "alice"
        assert server.requests[-1].method == "GET"
    finally:
        await server.stop()


def test_calls_from_other_threads_run_on_the_server_loop(emulator: EmulatorServer) -> None:
    ns = emulator.call(emulator.cluster.get, emulator.cluster.rt_for_key(("", "namespaces")), None, "default")
    assert ns["metadata"]["name"] == "default"
    emulator.stop_thread()
    emulator.stop_thread()


def test_internal_errors_are_500_status(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(emulator.cluster, "list", boom)
    response = requests.get(emulator.url + "/api/v1/namespaces", timeout=5)
    assert response.status_code == 500
    assert response.json()["reason"] == "InternalError"


def test_method_and_body_errors(emulator: EmulatorServer) -> None:
    url = emulator.url + "/api/v1/namespaces/default/configmaps"
    assert requests.put(url, json={}, timeout=5).status_code == 405
    assert requests.delete(emulator.url + "/api/v1/namespaces/default/status", timeout=5).status_code == 405
    assert requests.post(url + "/x", json={}, timeout=5).status_code == 405
    assert requests.post(emulator.url + "/api/v1/configmaps", json={}, timeout=5).status_code == 405
    assert requests.post(url, data=b"", timeout=5).status_code == 400
    assert requests.post(url, data=b"[1]", timeout=5).status_code == 400
    assert requests.post(url, json={"metadata": 5}, timeout=5).status_code == 400
    assert (
        requests.post(
            url,
            data=b"\x00garbage",
            timeout=5,
            headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
        ).status_code
        == 400
    )
    yaml_body = "metadata: {name: from-yaml}\ndata: {a: '1'}\n"
    created = requests.post(url, data=yaml_body, headers={"Content-Type": "application/yaml"}, timeout=5)
    assert created.status_code == 201
    assert created.json()["data"] == {"a": "1"}
    assert requests.post(url, json={"metadata": {"name": "d"}}, params={"dryRun": "Some"}, timeout=5).status_code == 400
    assert requests.get(url, params={"limit": "x"}, timeout=5).status_code == 400


def test_a_list_of_a_thousand_objects_is_whole_in_name_order_and_pages_with_continue(
    emulator: EmulatorServer,
) -> None:
    """How fast it lists is measured by bench/emulator.py; here, that a big list is right."""
    emulator.apply_crd(WIDGET_CRD)
    rt = emulator.cluster.registry.lookup(GROUP, "v1", "widgets")

    def fill() -> None:
        for i in range(1000):
            emulator.cluster.create(rt, "default", widget(f"w{i:04}"), WriteOptions())

    emulator.call(fill)
    session = requests.Session()
    whole = session.get(emulator.url + WIDGETS, timeout=30).json()
    names = [item["metadata"]["name"] for item in whole["items"]]
    assert names == [f"w{i:04}" for i in range(1000)]
    paged: list[str] = []
    token = ""
    while True:
        params = {"limit": "300", **({"continue": token} if token else {})}
        page = session.get(emulator.url + WIDGETS, params=params, timeout=30).json()
        paged += [item["metadata"]["name"] for item in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert paged == names
