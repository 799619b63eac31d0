"""Which gateway and token the CLI uses, and how the gateway's refusals reach the user."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agent.console.connection import (
    DEFAULT_URL,
    ConnectionProblem,
    GatewayTarget,
    kubeconfig_token,
    resolve_target,
)
from agent.console.gatewayclient import GatewayClient, GatewayError, error_from
from controller.kube.client import Configuration


def no_kube() -> str | None:
    return None


def test_the_token_file_wins_then_the_environment_then_the_kubeconfig(tmp_path: Path) -> None:
    token_file = tmp_path / "dev-approver"
    token_file.write_text("file-token\n")
    env = {"RINGPILOT_GATEWAY_URL": "http://127.0.0.1:9999/", "RINGPILOT_TOKEN": "env-token"}
    target = resolve_target(None, str(token_file), env, no_kube)
    assert (target.url, target.token, target.token_source) == ("http://127.0.0.1:9999", "file-token", str(token_file))
    assert resolve_target(None, None, env, no_kube).token == "env-token"
    from_file_env = resolve_target(None, None, {"RINGPILOT_TOKEN_FILE": str(token_file)}, no_kube)
    assert (from_file_env.url, from_file_env.token) == (DEFAULT_URL, "file-token")
    kube = resolve_target("https://gw.example:8443", None, {}, lambda: "kube-token")
    assert (kube.url, kube.token, kube.token_source) == ("https://gw.example:8443", "kube-token", "kubeconfig")
    assert "kube-token" not in repr(kube)  # a token is never printed with its target


def test_what_to_set_is_named_when_nothing_gives_a_token(tmp_path: Path) -> None:
    with pytest.raises(ConnectionProblem, match="pass --token-file"):
        resolve_target(None, None, {}, no_kube)
    with pytest.raises(ConnectionProblem, match="is not an http"):
        resolve_target("127.0.0.1:8080", None, {"RINGPILOT_TOKEN": "t"}, no_kube)
    with pytest.raises(ConnectionProblem, match="cannot read"):
        resolve_target(None, str(tmp_path / "missing"), {}, no_kube)
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(ConnectionProblem, match="is empty"):
        resolve_target(None, str(tmp_path / "empty"), {}, no_kube)


def test_the_kubeconfig_token_is_its_bearer_token_only() -> None:
    def configured(api_key: dict[str, str]) -> Configuration:
        configuration = Configuration()
        configuration.api_key = api_key
        return configuration

    assert kubeconfig_token(lambda: configured({"authorization": "Bearer abc"})) == "abc"
    assert kubeconfig_token(lambda: configured({"authorization": "Basic abc"})) is None
    assert kubeconfig_token(lambda: configured({})) is None

    def missing() -> Configuration:
        raise OSError("no kubeconfig")

    assert kubeconfig_token(missing) is None


def test_a_refusal_carries_the_envelopes_code_message_and_field() -> None:
    refused = error_from(
        httpx.Response(
            403, json={"error": {"code": "Forbidden", "message": "dev-publisher submitted it", "field": None}}
        )
    )
    assert (refused.status, refused.code, str(refused)) == (
        403,
        "Forbidden",
        "403 Forbidden: dev-publisher submitted it",
    )
    invalid = error_from(
        httpx.Response(422, json={"error": {"code": "Invalid", "message": "too long", "field": "text"}})
    )
    assert str(invalid) == "422 Invalid: too long (text)"
    plain = error_from(httpx.Response(502, text="Bad gateway from the proxy"))
    assert str(plain) == "502 Bad Gateway: Bad gateway from the proxy"
    fastapi_style = error_from(httpx.Response(404, json={"detail": "Not Found"}))
    assert str(fastapi_style) == "404 Not Found: Not Found"


def test_an_unreachable_gateway_and_a_wrong_answer_are_errors_the_user_can_read() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    target = GatewayTarget(url="http://127.0.0.1:1", token="t", token_source="test")
    with GatewayClient(target, transport=httpx.MockTransport(refuse)) as client, pytest.raises(GatewayError) as raised:
        client.whoami()
    assert raised.value.status == 0 and "cannot reach the gateway at http://127.0.0.1:1" in str(raised.value)

    def odd(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"unexpected": True})

    with GatewayClient(target, transport=httpx.MockTransport(odd)) as client, pytest.raises(GatewayError) as raised:
        client.trace("corr-1")  # a trace names its correlation ID
    assert raised.value.code == "BadAnswer"
