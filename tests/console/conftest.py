"""Fixtures of the console's end-to-end tests: the CLI's view of the real `ringpilot gateway` on the e2e stack.

`cli_gateway` is the gateway process the gateway's own e2e tests use (`served`: its ServiceAccount,
tokens mode, the dev users' tokens written one file per user as `ringpilot dev` writes them), plus
the environment of CLI processes: wide output and no token in the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.stack import Stack
from tests.gateway.conftest import Served, served  # noqa: F401  (fixture)


@dataclass(frozen=True)
class CliGateway:
    """Where the gateway listens, the namespace of its conversations, the dev users' token files, CLI env."""

    url: str
    namespace: str
    tokens_dir: Path
    env: dict[str, str]

    def token_file(self, user: str) -> Path:
        return self.tokens_dir / user


@pytest.fixture(scope="session")
def cli_gateway(stack: Stack, served: Served) -> CliGateway:  # noqa: F811
    env = {k: v for k, v in stack.env.items() if not k.startswith(("RINGPILOT_TOKEN", "RINGPILOT_GATEWAY"))}
    env["COLUMNS"] = "300"
    return CliGateway(served.url, served.namespace, stack.root / "tokens", env)
