"""Fixtures of the console's end-to-end tests: the real `ringpilot gateway` on the session's e2e stack.

`cli_gateway` starts the gateway process under its own ServiceAccount (the stack's `gateway`
environment) in tokens mode, with the dev users' tokens written one file per user as `ringpilot dev`
writes them, and gives the CLI processes their environment (wide output, no token in the environment).
"""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.devkit.identities import write_gateway_tokens
from tests.fixtures.stack import Stack, free_port, wait_for


@dataclass(frozen=True)
class CliGateway:
    """Where the gateway listens, the dev users' token files, and the environment of CLI processes."""

    url: str
    tokens_dir: Path
    env: dict[str, str]

    def token_file(self, user: str) -> Path:
        return self.tokens_dir / user


@pytest.fixture(scope="session")
def cli_gateway(stack: Stack) -> Iterator[CliGateway]:
    assert stack.identities is not None
    tokens_dir = stack.root / "tokens"
    token_file = write_gateway_tokens(stack.identities, tokens_dir)
    port = free_port()
    env = {
        **stack.env,
        **stack.process_env["gateway"],
        "RINGPILOT_GATEWAY_PORT": str(port),
        "RINGPILOT_GATEWAY_AUTH": "tokens",
        "RINGPILOT_GATEWAY_TOKEN_FILE": str(token_file),
        "RINGPILOT_GATEWAY_POLL_INTERVAL_SECONDS": "0.2",
    }
    child = stack.group.spawn(
        "gateway", [sys.executable, "-m", "controller.cli", "gateway"], env, stack.logs / "gateway.log"
    )
    url = f"http://127.0.0.1:{port}"
    token = (tokens_dir / "dev-viewer").read_text().strip()

    def up() -> bool:
        if child.process.poll() is not None:
            raise AssertionError(f"the gateway exited; see {stack.logs / 'gateway.log'}")
        request = urllib.request.Request(f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    wait_for(up, 60, 0.2, "the gateway")
    cli_env = {k: v for k, v in stack.env.items() if not k.startswith(("RINGPILOT_TOKEN", "RINGPILOT_GATEWAY"))}
    cli_env["COLUMNS"] = "300"
    try:
        yield CliGateway(url, tokens_dir, cli_env)
    finally:
        stack.group.stop(child)
        stack.group.children.remove(child)
