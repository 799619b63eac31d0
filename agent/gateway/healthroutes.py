"""`/api/v1/health`, `/api/v1/whoami` and `/metrics`: what the gateway depends on, who is calling, its metrics.

Health asks PostgreSQL (`SELECT 1`), Redis (`PING`) and the Kubernetes API (`GET /version`) with short
deadlines and answers 503 naming each check that failed, so a load balancer stops sending traffic and
an operator sees why. Health and metrics need no token.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from agent.gateway.bodies import Health, WhoAmI
from agent.gateway.dependencies import CallerDep, GatewayDep
from agent.gateway.settings import AuthMode
from agent.gateway.wiring import Gateway
from controller.kube.authreviews import server_version
from controller.kube.client import KubeError
from controller.storage.cache import ping
from controller.telemetry.serving import exposition

router = APIRouter(tags=["gateway"])
CHECK_SECONDS = 3.0
#: `authenticatedBy` as gateway-chart.md §1.3 spells it.
AUTHENTICATED_BY = {AuthMode.TOKENS: "token", AuthMode.KUBERNETES: "kubernetes", AuthMode.OIDC: "oidc"}


async def _database(gateway: Gateway) -> str:
    try:
        async with gateway.pool.connection(timeout=CHECK_SECONDS) as conn:
            await conn.execute("SELECT 1")
        return "ok"
    except Exception as error:  # any failure is the answer: the check reports it, never raises
        return f"unavailable: {type(error).__name__}"


async def _redis(gateway: Gateway) -> str:
    if gateway.redis is None:
        return "not configured"
    return "ok" if await ping(gateway.redis) else "unavailable: no answer to PING"


async def _kubernetes(gateway: Gateway) -> str:
    if gateway.api_client is None:
        return "unavailable: no credentials"
    try:
        await asyncio.wait_for(server_version(gateway.api_client), CHECK_SECONDS)
        return "ok"
    except (KubeError, TimeoutError) as error:
        return f"unavailable: {error or type(error).__name__}"


@router.get("/api/v1/health", responses={503: {"model": Health}})
async def health(gateway: GatewayDep) -> JSONResponse:
    """ok when PostgreSQL, Redis and Kubernetes answer; 503 naming what failed otherwise."""
    database, redis, kubernetes = await asyncio.gather(_database(gateway), _redis(gateway), _kubernetes(gateway))
    checks = {"database": database, "redis": redis, "kubernetes": kubernetes}
    failed = any(value.startswith("unavailable") for value in checks.values())
    body = Health(status="unavailable" if failed else "ok", checks=checks)
    return JSONResponse(body.model_dump(mode="json", by_alias=True), status_code=503 if failed else 200)


@router.get("/api/v1/whoami")
async def whoami(gateway: GatewayDep, principal: CallerDep) -> WhoAmI:
    """The authenticated caller, their groups and their Ringpilot role."""
    return WhoAmI(
        user=principal.user,
        groups=list(principal.groups),
        roles=[gateway.role(principal).value],
        authenticated_by=AUTHENTICATED_BY[principal.method],
    )


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
