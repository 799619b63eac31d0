"""Fixtures of the gateway's unit tests: the app under FastAPI's TestClient on the emulator, PostgreSQL, Redis.

`gw` opens the real application (its lifespan opens the `Gateway`: pool, Redis, authenticator) in
TestClient's own event loop, in tokens mode with one token per dev user; the test's loop runs the real
turn worker (`harness`, with the event log switched on) to answer what the gateway appended, as a
worker process would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
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
