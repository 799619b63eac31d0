"""Who is calling: the gateway's three authenticators, behind `Authenticator.authenticate(token)`.

- `TokenTable` (`tokens`): a YAML/JSON list of `{sha256, user, groups}` (a mounted Secret); the bearer
  token's SHA-256 is looked up, so the file never holds a usable token. Re-read when the file changes.
- `TokenReviewer` (`kubernetes`): a TokenReview with the gateway's own credentials; the principal keeps
  the caller's token so writes go out as the caller and RBAC decides.
- `OidcVerifier` (`oidc`): a JWT whose signature (the issuer's JWKS), issuer, audience and expiry hold.

A refusal counts in `ringpilot_gateway_auth_failures_total{method}`; a token is never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jwt
import yaml
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from agent.gateway.settings import AuthMode, GatewaySettings
from controller.kube.authreviews import review_token
from controller.kube.client import ApiClient, KubeError
from controller.telemetry.metrics import GATEWAY_AUTH_FAILURES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `token` is set only in kubernetes mode (pass-through writes); never logged."""

    user: str
    groups: tuple[str, ...]
    method: AuthMode
    token: str | None = field(default=None, repr=False)


class Authenticator(Protocol):
    method: AuthMode

    async def authenticate(self, token: str) -> Principal | None:
        """The caller the bearer token names, or None when it names nobody."""
        ...


def refused(method: AuthMode) -> None:
    GATEWAY_AUTH_FAILURES.labels(method=method.value).inc()


def token_digest(token: str) -> str:
    """The hex SHA-256 a token file lists for `token`."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenEntry(BaseModel):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    user: str = Field(min_length=1, max_length=253, pattern=r"^[^\s]+$")
    groups: list[str] = Field(default_factory=list)


_ENTRIES = TypeAdapter(list[TokenEntry])


class TokenFileError(ValueError):
    """The token file is unreadable or invalid; the message names the file and the entry."""


def read_token_file(path: Path) -> dict[str, TokenEntry]:
    """The entries of a token file by their digest."""
    try:
        raw = yaml.safe_load(path.read_text()) or []
        entries = _ENTRIES.validate_python(raw)
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise TokenFileError(f"{path}: {error}") from error
    return {entry.sha256: entry for entry in entries}


class TokenTable:
    """Static hashed tokens (see the module docstring)."""

    method = AuthMode.TOKENS

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._entries: dict[str, TokenEntry] = {}
        self._reload()

    def _reload(self) -> None:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._entries = read_token_file(self.path)
            self._stamp = stamp

    async def authenticate(self, token: str) -> Principal | None:
        try:
            self._reload()
        except (OSError, TokenFileError) as error:  # keep the last good table; a rotation may be half-written
            logger.warning("Token file not reloaded: %s", type(error).__name__)
        entry = self._entries.get(token_digest(token))
        if entry is None:
            return None
        return Principal(entry.user, tuple(entry.groups), self.method)


class TokenReviewer:
    """Kubernetes TokenReview with the gateway's own client (see the module docstring)."""

    method = AuthMode.KUBERNETES

    def __init__(self, api_client: ApiClient) -> None:
        self.api_client = api_client

    async def authenticate(self, token: str) -> Principal | None:
        status = await review_token(self.api_client, token)
        user = status.get("user") or {}
        if not status.get("authenticated") or not user.get("username"):
            return None
        return Principal(str(user["username"]), tuple(user.get("groups") or ()), self.method, token)


class OidcVerifier:
    """OIDC ID or access tokens, verified (see the module docstring)."""

    method = AuthMode.OIDC
    ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")

    def __init__(self, issuer: str, audience: str, jwks_url: str, username_claim: str, groups_claim: str) -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300)
        self.username_claim = username_claim
        self.groups_claim = groups_claim

    def _verify(self, token: str) -> dict[str, Any]:
        key = self.keys.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=list(self.ALGORITHMS),
            audience=self.audience,
            issuer=self.issuer,
            options={"require": ["exp", "iss", "aud"]},
        )
        return claims

    async def authenticate(self, token: str) -> Principal | None:
        try:
            claims = await asyncio.to_thread(self._verify, token)
        except jwt.PyJWTError as error:
            logger.info("OIDC token refused: %s", type(error).__name__)
            return None
        user = claims.get(self.username_claim)
        groups = claims.get(self.groups_claim) or []
        if not isinstance(user, str) or not user or not isinstance(groups, list):
            return None
        return Principal(user, tuple(str(g) for g in groups), self.method)


def build_authenticator(settings: GatewaySettings, api_client: ApiClient | None) -> Authenticator:
    """The authenticator `RINGPILOT_GATEWAY_AUTH` names."""
    if settings.gateway_auth is AuthMode.TOKENS:
        assert settings.gateway_token_file is not None  # the settings refuse tokens mode without one
        return TokenTable(settings.gateway_token_file)
    if settings.gateway_auth is AuthMode.KUBERNETES:
        if api_client is None:
            raise ValueError("kubernetes mode needs the gateway's Kubernetes credentials")
        return TokenReviewer(api_client)
    assert settings.gateway_oidc_issuer and settings.gateway_oidc_audience and settings.gateway_oidc_jwks_url
    return OidcVerifier(
        settings.gateway_oidc_issuer,
        settings.gateway_oidc_audience,
        settings.gateway_oidc_jwks_url,
        settings.gateway_oidc_username_claim,
        settings.gateway_oidc_groups_claim,
    )


async def authenticate(authenticator: Authenticator, header: str | None) -> Principal | None:
    """The principal an `Authorization: Bearer …` header names; None (and a counted refusal) otherwise."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        refused(authenticator.method)
        return None
    try:
        principal = await authenticator.authenticate(token)
    except KubeError as error:
        refused(authenticator.method)
        raise error
    if principal is None:
        refused(authenticator.method)
    return principal
