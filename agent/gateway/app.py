"""The gateway's FastAPI application: routers, the chat page, security headers, body limits, errors.

`create_app(settings)` opens the process's `Gateway` in the lifespan (or takes one built by a test) and
includes every router in `ROUTERS`. The page at `/` is one static HTML file with its script and style
beside it, served with `Content-Security-Policy: default-src 'self'` (no inline script, nothing from
elsewhere). Bodies above `RINGPILOT_GATEWAY_MAX_BODY_BYTES` get a 413 before any route reads them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from psycopg_pool import PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.gateway import changeroutes, chatroutes, healthroutes, streaming, tasksroutes, traceroutes
from agent.gateway.bodies import ErrorEnvelope
from agent.gateway.dependencies import kube_refusal
from agent.gateway.errors import envelope, install_error_handlers
from agent.gateway.settings import GatewaySettings
from agent.gateway.wiring import open_gateway
from controller.kube.client import ApiClient, KubeError
from controller.telemetry.metrics import mark_build, ringpilot_version

STATIC = Path(__file__).with_name("static")
CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}

# ---- Routers of the gateway. The console engineer's tasks and traces routers are added here. ----
ROUTERS: list[APIRouter] = [
    healthroutes.router,
    chatroutes.router,
    streaming.router,
    changeroutes.router,
    tasksroutes.router,  # GET /api/v1/tasks (the console's)
    traceroutes.router,  # GET /api/v1/traces/{correlationId} (the console's)
]


class GuardMiddleware:
    """Security headers on every response; 413 for a body over the limit (declared, or counted as it arrives)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        declared_too_large = length is not None and (not length.isdigit() or int(length) > self.max_body_bytes)
        received = 0
        over = refused = False

        async def secured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        async def refuse() -> None:
            nonlocal refused
            if not refused:
                refused = True
                text = f"The request body is larger than {self.max_body_bytes} bytes"
                response = JSONResponse(envelope("TooLarge", text, "body"), status_code=413)
                await response({"type": "http"}, _no_body, secured_send)

        async def counted_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    over = True
                    return {"type": "http.disconnect"}  # the route stops reading; its answer is replaced
            return message

        async def guarded_send(message: Message) -> None:
            if over:
                await refuse()
                return
            await secured_send(message)

        if declared_too_large:
            await refuse()
            return
        await self.app(scope, counted_receive, guarded_send)
        if over:
            await refuse()


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _page_routes(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")


def _store_errors(app: FastAPI) -> None:
    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _database(_: Any, error: Exception) -> JSONResponse:
        message = f"PostgreSQL is unavailable ({type(error).__name__}); try again shortly"
        return JSONResponse(envelope("Unavailable", message, "database"), status_code=503)

    @app.exception_handler(KubeError)
    async def _kube(_: Any, error: KubeError) -> JSONResponse:
        refusal = kube_refusal(error, "carry out the request")
        return JSONResponse(envelope(refusal.code, refusal.message, refusal.field), status_code=refusal.status)


def create_app(settings: GatewaySettings, *, api_client: ApiClient | None = None) -> FastAPI:
    """The application; its lifespan opens the `Gateway` (with `api_client`, else this process's credentials)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mark_build()
        async with open_gateway(settings, api_client) as opened:
            app.state.gateway = opened
            yield

    app = FastAPI(
        title="Ringpilot chat gateway",
        version=ringpilot_version(),
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN, which the CSP (rightly) refuses
        redoc_url=None,
        responses={401: {"model": ErrorEnvelope}, 422: {"model": ErrorEnvelope}},
    )
    install_error_handlers(app)
    _store_errors(app)
    for router in ROUTERS:
        app.include_router(router)
    _page_routes(app)
    app.add_middleware(GuardMiddleware, max_body_bytes=settings.gateway_max_body_bytes)
    return app
