"""Fixtures of the gateway's unit tests: the app under FastAPI's TestClient on the emulator, PostgreSQL, Redis.

`gw` opens the real application (its lifespan opens the `Gateway`: pool, Redis, authenticator) in
TestClient's own event loop, in tokens mode with one token per dev user; the test's loop runs the real
turn worker (`harness`, with the event log switched on) to answer what the gateway appended, as a
worker process would. `served` is the real `ringpilot gateway` process on the shared e2e stack.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from agent.chat.events import EventLog
from agent.conversation.turnevents import TurnEvents
from agent.gateway.app import create_app
from agent.gateway.settings import GatewaySettings
from tests.agent.conftest import (  # noqa: F401  (fixtures)
    Cluster,
    Harness,
    build_harness,
    close_providers,
    cluster,
    settings,
)
from tests.fixtures.kube import api_client

USERS = ("dev-admin", "dev-publisher", "dev-approver", "dev-approver-2", "dev-operator", "dev-viewer")


def token_of(user: str) -> str:
    return f"token-of-{user}"


def write_tokens(path: Path, users: tuple[str, ...] = USERS, groups: dict[str, list[str]] | None = None) -> Path:
    entries = [
        {"sha256": hashlib.sha256(token_of(u).encode()).hexdigest(), "user": u, "groups": (groups or {}).get(u, [])}
        for u in users
    ]
    path.write_text(json.dumps(entries))
    return path


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_of(user)}"}


@dataclass
class Gw:
    """The app's client, the cluster behind it, and the worker that answers."""

    client: TestClient
    cluster: Cluster
    harness: Harness

    def as_user(self, user: str) -> Any:
        """Requests as `user`: `gw.as_user("dev-viewer").get(path)`."""
        outer = self

        class Bound:
            def __getattr__(self, method: str) -> Any:
                def call(path: str, **kwargs: Any) -> Any:
                    headers = {**auth(user), **kwargs.pop("headers", {})}
                    return getattr(outer.client, method)(path, headers=headers, **kwargs)

                return call

        return Bound()

    async def answer(self, name: str) -> dict[str, Any]:
        body = self.cluster.get("conversations", name)
        await self.harness.worker.handle("default", name, body["metadata"]["uid"], "unused")
        return self.cluster.get("conversations", name)


def gateway_settings(tmp_path: Path, database_url: str, redis_url: str, **extra: Any) -> GatewaySettings:
    return GatewaySettings(
        database_url=database_url,
        redis_url=redis_url,
        gateway_token_file=write_tokens(tmp_path / "tokens.json"),
        gateway_poll_interval_seconds=0.05,
        **extra,
    )


@pytest.fixture
def gw(
    cluster: Cluster,  # noqa: F811
    db_pool: Any,
    redis_async: Any,
    settings: Any,  # noqa: F811
    database_url: str,
    redis_url: str,
    tmp_path: Path,
) -> Iterator[Gw]:
    harness = build_harness(cluster, db_pool, redis_async, settings)
    harness.engine.stream = TurnEvents(EventLog(db_pool, redis_async))
    kube = api_client(cluster.url)
    app = create_app(gateway_settings(tmp_path, database_url, redis_url), api_client=kube)
    with TestClient(app) as client:
        yield Gw(client, cluster, harness)
    kube.close()


@dataclass
class Served:
    """A real `ringpilot gateway` process (uvicorn) on the e2e stack, in tokens mode."""

    url: str
    tokens: dict[str, str]
    namespace: str

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


E2E_NAMESPACE = "gw-e2e"


def spawn_gateway(stack: Any, name: str, **env: str) -> tuple[Any, str]:
    """Start `ringpilot gateway` as `name` on the stack with its ServiceAccount and `env`; (child, URL) once healthy."""
    from tests.fixtures.stack import free_port, wait_for

    port = free_port()
    full = {
        **stack.env,
        **stack.process_env["gateway"],
        "RINGPILOT_GATEWAY_PORT": str(port),
        "RINGPILOT_GATEWAY_NAMESPACE": E2E_NAMESPACE,
        "RINGPILOT_GATEWAY_POLL_INTERVAL_SECONDS": "0.5",
        **env,
    }
    argv = [sys.executable, "-m", "controller.cli", "gateway"]
    child = stack.group.spawn(name, argv, full, stack.logs / f"{name}.log")
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if child.process.poll() is not None:
            raise AssertionError(f"the gateway exited; see {stack.logs / f'{name}.log'}")
        try:
            return requests.get(f"{url}/api/v1/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_for(healthy, 60, 0.2, "the gateway's health")
    return child, url


def stop_gateway(stack: Any, child: Any) -> None:
    stack.group.stop(child)
    stack.group.children.remove(child)


@pytest.fixture(scope="session")
def served(stack: Any) -> Iterator[Served]:
    """The gateway as `ringpilot dev` runs it: its own ServiceAccount, the dev users' tokens, a free port."""
    from controller.devkit.identities import write_gateway_tokens

    assert stack.identities is not None
    token_file = write_gateway_tokens(stack.identities, stack.root / "tokens")
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": E2E_NAMESPACE}}
    stack.kubectl("apply", "-f", "-", stdin=json.dumps(namespace))
    child, url = spawn_gateway(
        stack, "gateway", RINGPILOT_GATEWAY_AUTH="tokens", RINGPILOT_GATEWAY_TOKEN_FILE=str(token_file)
    )
    tokens = {p.name: p.read_text().strip() for p in (stack.root / "tokens").iterdir()}
    try:
        yield Served(url, tokens, E2E_NAMESPACE)
    finally:
        stop_gateway(stack, child)
