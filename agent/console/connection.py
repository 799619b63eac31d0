"""Where the CLI finds the gateway and which bearer token it sends.

The URL is `--gateway`, else `RINGPILOT_GATEWAY_URL`, else the dev default. The token is, in order:
the file named by `--token-file` (e.g. `<data-dir>/tokens/<user>` written by `ringpilot dev`),
`RINGPILOT_TOKEN`, the file named by `RINGPILOT_TOKEN_FILE`, and last the bearer token of the current
kubeconfig context, which is enough for a gateway in `kubernetes` mode (TokenReview).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from controller.kube.client import CREDENTIAL_ERRORS, Configuration, configuration_from_environment

URL_ENV = "RINGPILOT_GATEWAY_URL"
TOKEN_ENV = "RINGPILOT_TOKEN"
TOKEN_FILE_ENV = "RINGPILOT_TOKEN_FILE"
#: Where `ringpilot dev` serves the gateway unless told otherwise.
DEFAULT_URL = "http://127.0.0.1:8080"


class ConnectionProblem(Exception):
    """No usable URL or token: the message says what to set."""


class GatewayTarget(BaseModel):
    """A gateway and the credentials to call it with."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(pattern=r"^https?://", description="Base URL of the gateway, without /api/v1")
    token: str = Field(min_length=1, repr=False)
    token_source: str = Field(description="Where the token came from, for error messages")


def _read_token(path: Path, what: str) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConnectionProblem(f"{what}: cannot read {path}: {error.strerror or error}") from error
    if not token:
        raise ConnectionProblem(f"{what}: {path} is empty")
    return token


def kubeconfig_token(load: Callable[[], Configuration] = configuration_from_environment) -> str | None:
    """The bearer token of the current kubeconfig context (or the pod's), or None when it has none."""
    try:
        configuration = load()
    except CREDENTIAL_ERRORS:
        return None
    header = (configuration.api_key or {}).get("authorization") or ""
    scheme, _, token = str(header).partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def resolve_target(
    gateway: str | None,
    token_file: str | None,
    env: Mapping[str, str] = os.environ,
    kube_token: Callable[[], str | None] = kubeconfig_token,
) -> GatewayTarget:
    """The gateway to call and the token to send (see the module docstring)."""
    url = (gateway or env.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConnectionProblem(f"{URL_ENV}: {url!r} is not an http:// or https:// URL")
    if token_file:
        return GatewayTarget(url=url, token=_read_token(Path(token_file), "--token-file"), token_source=token_file)
    if env.get(TOKEN_ENV, "").strip():
        return GatewayTarget(url=url, token=env[TOKEN_ENV].strip(), token_source=TOKEN_ENV)
    if env.get(TOKEN_FILE_ENV):
        path = env[TOKEN_FILE_ENV]
        return GatewayTarget(url=url, token=_read_token(Path(path), TOKEN_FILE_ENV), token_source=path)
    token = kube_token()
    if token is None:
        raise ConnectionProblem(
            f"no token: pass --token-file (e.g. .ringpilot/tokens/<user>), set {TOKEN_ENV}, "
            "or use a kubeconfig whose context has a bearer token"
        )
    return GatewayTarget(url=url, token=token, token_source="kubeconfig")
