"""Settings of `ringpilot gateway`: where it listens, how it authenticates callers, and its limits.

`GatewaySettings` extends the shared `CommonSettings` (database, Redis, policy file) and is read from
`RINGPILOT_*` variables once at start. `RINGPILOT_GATEWAY_AUTH` picks the authenticator: `tokens` (a
file of sha256-hashed tokens, `RINGPILOT_GATEWAY_TOKEN_FILE`), `kubernetes` (TokenReview; writes go
out with the caller's own token) or `oidc` (JWTs verified against the issuer's JWKS and audience).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import Field, FilePath, model_validator

from controller.settings import ENV_PREFIX, CommonSettings


class AuthMode(StrEnum):
    TOKENS = "tokens"
    KUBERNETES = "kubernetes"
    OIDC = "oidc"


class GatewaySettings(CommonSettings):
    """Settings of the chat gateway (see the module docstring)."""

    gateway_host: str = Field("127.0.0.1", min_length=1, description="Address the gateway listens on")
    gateway_port: int = Field(8080, ge=0, le=65535, description="Port of the gateway (0: any free port)")
    gateway_auth: AuthMode = Field(AuthMode.TOKENS, description="tokens, kubernetes or oidc")
    gateway_token_file: FilePath | None = Field(
        None,
        description="YAML or JSON list of {sha256, user, groups} (a mounted Secret); required in tokens mode",
    )
    gateway_namespace: str = Field(
        "default", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", description="Namespace of new Conversations"
    )
    gateway_oidc_issuer: str | None = Field(None, description="OIDC issuer (the `iss` claim) in oidc mode")
    gateway_oidc_audience: str | None = Field(None, description="The `aud` a token must carry in oidc mode")
    gateway_oidc_jwks_url: str | None = Field(None, description="JWKS URL of the issuer's signing keys")
    gateway_oidc_username_claim: str = Field("sub", min_length=1, description="Claim that names the user")
    gateway_oidc_groups_claim: str = Field("groups", min_length=1, description="Claim that lists the groups")
    gateway_turns_per_minute: int = Field(30, ge=1, description="Chat turns one user may start per minute")
    gateway_max_body_bytes: int = Field(65_536, ge=1024, description="Largest request body accepted (413 above)")
    gateway_poll_interval_seconds: float = Field(
        1.0, gt=0, le=30, description="How often a stream re-reads PostgreSQL when no announcement arrives"
    )
    gateway_ping_seconds: float = Field(15.0, gt=0, description="Keep-alive comment interval of an idle stream")
    pool_max_size: int = Field(10, ge=2, description="PostgreSQL connections of the gateway")

    @model_validator(mode="after")
    def _mode_needs_its_inputs(self) -> Self:
        if self.gateway_auth is AuthMode.TOKENS and self.gateway_token_file is None:
            raise ValueError(f"{ENV_PREFIX}GATEWAY_AUTH=tokens needs {ENV_PREFIX}GATEWAY_TOKEN_FILE")
        if self.gateway_auth is AuthMode.OIDC and not (
            self.gateway_oidc_issuer and self.gateway_oidc_audience and self.gateway_oidc_jwks_url
        ):
            raise ValueError(
                f"{ENV_PREFIX}GATEWAY_AUTH=oidc needs {ENV_PREFIX}GATEWAY_OIDC_ISSUER, "
                f"{ENV_PREFIX}GATEWAY_OIDC_AUDIENCE and {ENV_PREFIX}GATEWAY_OIDC_JWKS_URL"
            )
        return self
