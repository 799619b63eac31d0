"""The webhook server's settings and readiness: a port needs a certificate, and /healthz fails without the server."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from controller.api.policy import load_policy
from controller.devkit.identities import prepare_identities, webhook_configurations
from controller.operator.admissionhooks import probe_webhooks
from controller.settings import ControllerSettings, SettingsError, load_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_webhook_port_without_a_certificate_is_refused_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RINGPILOT_WEBHOOK_PORT", "9443")
    with pytest.raises(SettingsError, match="RINGPILOT_WEBHOOK_PORT needs RINGPILOT_WEBHOOK_CERT_FILE"):
        load_settings(ControllerSettings)


def test_readiness_fails_while_the_webhook_server_is_down_and_passes_once_it_serves(tmp_path: Path) -> None:
    identities = prepare_identities(tmp_path, load_policy())
    settings = ControllerSettings(
        webhook_port=free_port(),
        webhook_address="127.0.0.1",
        webhook_cert_file=identities.webhook_cert,
        webhook_key_file=identities.webhook_key,
    )

    async def scenario() -> str:
        with pytest.raises(RuntimeError, match=f"webhook server on port {settings.webhook_port} does not answer"):
            await probe_webhooks(settings, timeout_seconds=1)
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(identities.webhook_cert, identities.webhook_key)
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", settings.webhook_port, ssl=context)
        async with server:
            return await probe_webhooks(settings, timeout_seconds=2)

    assert asyncio.run(scenario()) == f"serving on port {settings.webhook_port}"


def test_the_webhook_configurations_fail_closed_on_ringpilot_kinds_only(tmp_path: Path) -> None:
    identities = prepare_identities(tmp_path, load_policy())
    mutating, validating = webhook_configurations(identities.ca_bundle)
    hooks = mutating["webhooks"] + validating["webhooks"]
    assert {h["failurePolicy"] for h in hooks} == {"Fail"}
    assert {g for h in hooks for r in h["rules"] for g in r["apiGroups"]} == {"ringpilot.dev"}
    assert [h["clientConfig"]["service"]["path"] for h in mutating["webhooks"]] == [
        "/stamp-conversation",
        "/stamp-requests",
        "/stamp-decisions",
    ]
    again = prepare_identities(tmp_path, load_policy())
    assert again.tokens == identities.tokens  # a restarted stack keeps its users' tokens
