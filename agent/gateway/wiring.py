"""The gateway's dependencies, opened once per process: `Gateway` and `open_gateway(settings)`.

`Gateway` holds the PostgreSQL pool, the Redis client, the gateway's own Kubernetes client, the
authenticator, the event log and the turn limiter, and answers `objects_for(principal)`: the client a
write goes out with — the caller's own token in kubernetes mode (RBAC decides), else the gateway's
ServiceAccount, which the admission webhooks trust to name the user (policy `identity.trustedPrincipals`).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from agent.chat.events import EventLog
from agent.gateway.authenticating import Authenticator, Principal, build_authenticator, token_digest
from agent.gateway.ratelimit import TurnLimiter
from agent.gateway.settings import GatewaySettings
from controller.api.policy import Permission, Policy, Role, load_policy
from controller.kube.client import CREDENTIAL_ERRORS, ApiClient, CustomObjects, api_client_from_environment
from controller.storage.cache import redis_client
from controller.storage.db import Pool, create_pool

logger = logging.getLogger(__name__)

#: Pass-through clients kept per process (kubernetes mode) before the cache starts over.
MAX_CALLER_CLIENTS = 256


@dataclass
class Gateway:
    """Everything a request handler needs (see the module docstring)."""

    settings: GatewaySettings
    policy: Policy
    pool: Pool
    redis: Any
    api_client: ApiClient | None
    authenticator: Authenticator
    events: EventLog
    limiter: TurnLimiter
    callers: dict[str, ApiClient] = field(default_factory=dict)

    def role(self, principal: Principal) -> Role:
        return self.policy.role_for(principal.user, principal.groups)

    def may(self, principal: Principal, permission: Permission) -> bool:
        return permission in self.policy.permissions_for(principal.user, principal.groups)

    def is_admin(self, principal: Principal) -> bool:
        return self.role(principal) is Role.ADMIN

    def client_for(self, principal: Principal) -> ApiClient:
        """The caller's own client in kubernetes mode, else the gateway's."""
        if principal.token is None:
            if self.api_client is None:
                raise RuntimeError("the gateway has no Kubernetes credentials")
            return self.api_client
        if self.api_client is None:
            raise RuntimeError("the gateway has no Kubernetes configuration to pass a token through")
        key = token_digest(principal.token)
        if key not in self.callers:
            if len(self.callers) >= MAX_CALLER_CLIENTS:  # dropped, not closed: a request may still use one
                self.callers.clear()
            configuration = copy.copy(self.api_client.configuration)
            configuration.api_key = {"BearerToken": principal.token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
            configuration.refresh_api_key_hook = None  # it would put the gateway's own token back
            configuration.cert_file = configuration.key_file = None
            self.callers[key] = ApiClient(configuration)
        return self.callers[key]

    def objects_for(self, principal: Principal) -> CustomObjects:
        return CustomObjects(self.client_for(principal))

    @property
    def objects(self) -> CustomObjects:
        """The gateway's own view (reads that every caller may make, e.g. a Conversation's status)."""
        if self.api_client is None:
            raise RuntimeError("the gateway has no Kubernetes credentials")
        return CustomObjects(self.api_client)


async def _kube_client() -> ApiClient | None:
    try:
        return await asyncio.to_thread(api_client_from_environment)
    except CREDENTIAL_ERRORS as error:
        logger.warning("No Kubernetes credentials: %s", type(error).__name__)
        return None


@asynccontextmanager
async def open_gateway(settings: GatewaySettings, api_client: ApiClient | None = None) -> AsyncIterator[Gateway]:
    """Open the gateway's dependencies for the block (PostgreSQL need not be up: health says so)."""
    if not settings.database_url:
        raise ValueError("the gateway needs RINGPILOT_DATABASE_URL")
    policy = load_policy(settings.policy_file)
    pool = create_pool(settings.database_url, max_size=settings.pool_max_size, name="gateway", timeout_seconds=5)
    await pool.open(wait=False)
    redis = redis_client(settings.redis_url) if settings.redis_url else None
    owned = api_client is None
    if api_client is None:
        api_client = await _kube_client()
    authenticator = build_authenticator(settings, api_client)
    gateway = Gateway(
        settings=settings,
        policy=policy,
        pool=pool,
        redis=redis,
        api_client=api_client,
        authenticator=authenticator,
        events=EventLog(pool, redis),
        limiter=TurnLimiter(redis, settings.gateway_turns_per_minute),
    )
    logger.info("Gateway ready (auth %s)", settings.gateway_auth.value)
    try:
        yield gateway
    finally:
        for caller in gateway.callers.values():
            caller.close()
        if owned and api_client is not None:
            api_client.close()
        if redis is not None:
            await redis.aclose()
        await pool.close()
