"""Health with its dependencies up and down, the page and its CSP, OpenAPI, and the per-user turn limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from agent.gateway.app import STATIC, create_app
from agent.gateway.ratelimit import TurnLimiter
from controller.devkit.seeding import apply_crds
from tests.fixtures.kube import api_client
from tests.gateway.conftest import Gw, auth, gateway_settings

DEAD_POSTGRES = "postgresql://nobody@127.0.0.1:1/none"
DEAD_REDIS = "redis://127.0.0.1:1/0"


def test_health_is_ok_when_postgresql_redis_and_kubernetes_answer(gw: Gw) -> None:
    health = gw.client.get("/api/v1/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok", "kubernetes": "ok"}}


def _app(tmp_path: Path, database_url: str, redis_url: str, kube_url: str, **extra: Any) -> TestClient:
    kube = api_client(kube_url)
    return TestClient(create_app(gateway_settings(tmp_path, database_url, redis_url, **extra), api_client=kube))


def test_postgresql_down_is_a_503_naming_the_database(tmp_path: Path, redis_url: str, emulator: Any) -> None:
    kube = api_client(emulator.url)
    apply_crds(kube)
    with _app(tmp_path, DEAD_POSTGRES, redis_url, emulator.url) as client:
        health = client.get("/api/v1/health")
        assert health.status_code == 503
        checks = health.json()["checks"]
        assert checks["database"].startswith("unavailable") and checks["redis"] == "ok"
        refused = client.post("/api/v1/conversations", json={"text": "hello"}, headers=auth("dev-viewer"))
        assert refused.status_code == 503 and refused.json()["error"] == {
            "code": "Unavailable",
            "message": "PostgreSQL is unavailable (PoolTimeout); try again shortly",
            "field": "database",
        }
        assert client.get("/api/v1/conversations", headers=auth("dev-viewer")).json()["items"] == []
    kube.close()


def test_redis_or_kubernetes_down_is_a_503_naming_it(tmp_path: Path, database_url: str) -> None:
    with _app(tmp_path, database_url, DEAD_REDIS, "http://127.0.0.1:1") as client:
        health = client.get("/api/v1/health")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "unavailable" and body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith("unavailable")
        assert body["checks"]["kubernetes"].startswith("unavailable")
        down = client.get("/api/v1/conversations", headers=auth("dev-viewer"))
        assert down.status_code == 503 and down.json()["error"]["field"] == "kubernetes"


def test_the_page_is_served_with_a_strict_content_security_policy(gw: Gw) -> None:
    page = gw.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script src="/static/chat.js"' in page.text and "<script>" not in page.text
    script = gw.client.get("/static/chat.js")
    assert script.status_code == 200 and "textContent" in script.text
    assert "innerHTML" not in (STATIC / "chat.js").read_text()
    assert gw.client.get("/api/v1/health").headers["content-security-policy"].startswith("default-src 'self'")


def test_the_openapi_document_describes_every_route(gw: Gw) -> None:
    paths = gw.client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/health",
        "/api/v1/whoami",
        "/api/v1/conversations",
        "/api/v1/conversations/{name}",
        "/api/v1/conversations/{name}/messages",
        "/api/v1/conversations/{name}/events",
        "/api/v1/conversations/{name}/confirmations",
        "/api/v1/conversations/{name}/cancel",
        "/api/v1/changerequests",
        "/api/v1/changerequests/{name}/decisions",
    ):
        assert path in paths, path
    assert "text/event-stream" in str(paths["/api/v1/conversations/{name}/events"])


def test_turns_over_the_per_minute_limit_get_429_with_retry_after(
    tmp_path: Path, database_url: str, redis_url: str, emulator: Any
) -> None:
    kube = api_client(emulator.url)
    apply_crds(kube)
    with _app(tmp_path, database_url, redis_url, emulator.url, gateway_turns_per_minute=2) as client:
        me = auth("dev-operator")
        name = client.post("/api/v1/conversations", json={"text": "hello"}, headers=me).json()["name"]
        url = f"/api/v1/conversations/{name}/messages"
        assert client.post(url, json={"id": "a", "text": "hi"}, headers=me).status_code == 202
        limited = client.post(url, json={"id": "b", "text": "hi again"}, headers=me)
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "TooManyRequests"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert client.post(url, json={"id": "a", "text": "hi"}, headers=me).status_code == 202  # a repeat is free
        others = client.post("/api/v1/conversations", json={"text": "hello"}, headers=auth("dev-viewer"))
        assert others.status_code == 201  # the limit is per user
    kube.close()


async def test_the_limit_counts_per_minute_window_and_without_redis_per_replica() -> None:
    now = [600.0]
    limiter = TurnLimiter(None, 2, clock=lambda: now[0])
    assert [await limiter.admit("u") for _ in range(3)] == [0, 0, 60]
    now[0] = 659.5
    assert await limiter.admit("u") == 1
    now[0] = 660.0
    assert await limiter.admit("u") == 0
