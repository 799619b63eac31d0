"""The gateway's authenticators: hashed token files (reloaded on change), Kubernetes TokenReview, OIDC JWTs
verified against a JWKS served over HTTP, and the settings and CLI entry that choose them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from agent.gateway.app import create_app
from agent.gateway.authenticating import OidcVerifier, TokenFileError, TokenTable, read_token_file
from agent.gateway.settings import AuthMode, GatewaySettings
from controller.cli import build_parser, main
from controller.settings import SettingsError, load_settings
from tests.agent.conftest import Cluster
from tests.fixtures.kube import api_client
from tests.gateway.conftest import token_of, write_tokens

ISSUER, AUDIENCE = "https://idp.example.test", "ringpilot-gateway"


async def test_a_token_file_maps_hashes_to_users_and_is_reloaded_when_it_changes(tmp_path: Path) -> None:
    path = write_tokens(tmp_path / "tokens.json", ("dev-viewer",), {"dev-viewer": ["ringpilot-cab"]})
    table = TokenTable(path)
    found = await table.authenticate(token_of("dev-viewer"))
    assert found is not None and (found.user, found.groups, found.method) == (
        "dev-viewer",
        ("ringpilot-cab",),
        AuthMode.TOKENS,
    )
    assert await table.authenticate("token-of-dev-admin") is None
    assert token_of("dev-viewer") not in path.read_text()  # the file holds hashes only
    write_tokens(path, ("dev-admin",))
    assert await table.authenticate(token_of("dev-admin")) is not None
    assert await table.authenticate(token_of("dev-viewer")) is None
    path.write_text("- {sha256: short, user: x}")
    assert await table.authenticate(token_of("dev-admin")) is not None  # a broken rotation keeps the last table
    with pytest.raises(TokenFileError, match="sha256"):
        read_token_file(path)


def test_the_mode_must_come_with_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGPILOT_GATEWAY_AUTH", "tokens")
    with pytest.raises(SettingsError, match="RINGPILOT_GATEWAY_TOKEN_FILE"):
        load_settings(GatewaySettings)
    monkeypatch.setenv("RINGPILOT_GATEWAY_AUTH", "oidc")
    with pytest.raises(SettingsError, match="RINGPILOT_GATEWAY_OIDC_ISSUER"):
        load_settings(GatewaySettings)
    monkeypatch.setenv("RINGPILOT_GATEWAY_AUTH", "password")
    with pytest.raises(SettingsError, match="RINGPILOT_GATEWAY_AUTH"):
        load_settings(GatewaySettings)


def test_ringpilot_gateway_is_a_subcommand_and_refuses_to_start_without_a_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, commands = build_parser()
    assert "gateway" in commands
    monkeypatch.delenv("RINGPILOT_DATABASE_URL", raising=False)
    monkeypatch.setenv("RINGPILOT_GATEWAY_TOKEN_FILE", str(write_tokens(tmp_path / "t.json")))
    assert main(["gateway"]) == 2
    assert "RINGPILOT_DATABASE_URL: required by `ringpilot gateway`" in capsys.readouterr().err


def test_kubernetes_mode_reviews_the_callers_token_and_writes_with_it(
    cluster: Cluster, database_url: str, redis_url: str
) -> None:
    settings = GatewaySettings(database_url=database_url, redis_url=redis_url, gateway_auth="kubernetes")
    kube = api_client(cluster.url)
    with TestClient(create_app(settings, api_client=kube)) as client:
        # the dev emulator without auth takes a bearer token as the user's name
        me = client.get("/api/v1/whoami", headers={"Authorization": "Bearer dev-publisher"}).json()
        assert me == {
            "user": "dev-publisher",
            "groups": ["system:authenticated"],
            "roles": ["publisher"],
            "authenticatedBy": "kubernetes",
        }
        made = client.post("/api/v1/conversations", json={}, headers={"Authorization": "Bearer dev-publisher"})
        assert made.status_code == 201 and made.json()["user"] == "dev-publisher"
        assert client.get("/api/v1/whoami").status_code == 401
        gateway = client.app.state.gateway  # type: ignore[attr-defined]
        [caller] = gateway.callers.values()
        assert caller.configuration.auth_settings()["BearerToken"]["value"] == "Bearer dev-publisher"  # the caller's
    kube.close()


class JwksServer:
    """An issuer's JWKS endpoint over real HTTP (the edge the gateway talks to)."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        body = json.dumps({"keys": keys}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def signing() -> Iterator[tuple[rsa.RSAPrivateKey, JwksServer]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    server = JwksServer([{**public, "kid": "k1", "use": "sig", "alg": "RS256"}])
    yield key, server
    server.close()


def issue(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "groups": ["ringpilot-cab"], "exp": now + 300, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


async def test_oidc_tokens_need_the_issuers_signature_audience_and_time(
    signing: tuple[rsa.RSAPrivateKey, JwksServer],
) -> None:
    key, server = signing
    verifier = OidcVerifier(ISSUER, AUDIENCE, server.url, "sub", "groups")
    alice = await verifier.authenticate(issue(key))
    assert alice is not None and (alice.user, alice.groups, alice.method) == (
        "alice",
        ("ringpilot-cab",),
        AuthMode.OIDC,
    )
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for refused in (
        issue(forger),  # not the issuer's key
        issue(key, aud="someone-else"),
        issue(key, iss="https://evil.example.test"),
        issue(key, exp=int(time.time()) - 60),
        jwt.encode(
            {"sub": "alice", "aud": AUDIENCE, "iss": ISSUER}, "a-shared-secret-of-thirty-two-bytes!", algorithm="HS256"
        ),  # no signature key
        "not-a-jwt",
    ):
        assert await verifier.authenticate(refused) is None


def test_oidc_mode_maps_the_token_to_a_role_by_group(
    signing: tuple[rsa.RSAPrivateKey, JwksServer], database_url: str, redis_url: str, emulator: Any
) -> None:
    key, server = signing
    settings = GatewaySettings(
        database_url=database_url,
        redis_url=redis_url,
        gateway_auth="oidc",
        gateway_oidc_issuer=ISSUER,
        gateway_oidc_audience=AUDIENCE,
        gateway_oidc_jwks_url=server.url,
    )
    kube = api_client(emulator.url)
    with TestClient(create_app(settings, api_client=kube)) as client:
        me = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {issue(key)}"}).json()
        assert (me["user"], me["roles"], me["authenticatedBy"]) == ("alice", ["cab-approver"], "oidc")
        wrong = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {issue(key, aud='x')}"})
        assert wrong.status_code == 401
    kube.close()
