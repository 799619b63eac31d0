"""The `/metrics` endpoint of a single-process service (the controller, later the gateway).

`serve_metrics(port, refresh=…)` runs a small aiohttp server on the process's loop; `refresh` runs
before each scrape (queue depths, scrape-time gauges). With `PROMETHEUS_MULTIPROC_DIR` set it serves
the multiprocess collector instead of the default registry. The worker's endpoint is dramatiq's own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from controller.telemetry.multiproc import MULTIPROC_ENV

logger = logging.getLogger(__name__)

Refresh = Callable[[], Awaitable[None]]


def exposition() -> bytes:
    """The text exposition of this process's metrics."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def metrics_app(refresh: Refresh | None = None) -> web.Application:
    async def handle(_: web.Request) -> web.Response:
        if refresh is not None:
            try:
                await refresh()
            except Exception as error:  # a scrape still answers with what it has
                logger.warning("Refreshing metrics before a scrape failed: %s", error)
        return web.Response(body=exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    return app


@asynccontextmanager
async def serve_metrics(port: int, host: str = "0.0.0.0", refresh: Refresh | None = None) -> AsyncIterator[int]:
    """Serve `/metrics` on `host:port` for the block; yields the bound port (0: off, or the port was taken)."""
    if port == 0:
        yield 0
        return
    runner = web.AppRunner(metrics_app(refresh), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as error:  # the process still does its work; only the scrape is missing
        logger.error("Cannot serve /metrics on port %d: %s", port, error)
        await runner.cleanup()
        yield 0
        return
    sockets = getattr(site._server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    logger.info("Serving /metrics on port %d", bound)
    try:
        yield bound
    finally:
        await runner.cleanup()
