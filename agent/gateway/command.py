"""`ringpilot gateway`: the chat gateway under uvicorn, registered in the `ringpilot.commands` entry points.

`setup(subparsers)` adds the subcommand (the controller's CLI loads it without importing the agent)
and returns the function that runs it: read `GatewaySettings`, apply pending migrations (the event
log is the gateway's), then serve the app on `RINGPILOT_GATEWAY_HOST:RINGPILOT_GATEWAY_PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

Command = Callable[[argparse.Namespace], int]


def run_gateway(args: argparse.Namespace) -> int:
    # Imported here, not when the CLI loads its subcommands: the app pulls in prometheus_client, which reads
    # PROMETHEUS_MULTIPROC_DIR once, at import, and `ringpilot worker` sets that only after parsing.
    import uvicorn

    from agent.gateway.app import create_app
    from agent.gateway.settings import GatewaySettings
    from controller.settings import SettingsError, load_settings
    from controller.storage.migrating import migrate_async
    from controller.telemetry.logformat import configure_logging

    settings = load_settings(GatewaySettings)
    if not settings.database_url:
        raise SettingsError("RINGPILOT_DATABASE_URL: required by `ringpilot gateway`")
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(migrate_async(settings.database_url))
    config = uvicorn.Config(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep the process's own handler (JSON in the cluster)
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
    return 0


def setup(subparsers: Any) -> Command:
    """Add `ringpilot gateway` to the CLI's subcommands; the function that runs it."""
    subparsers.add_parser("gateway", help="run the chat gateway (HTTP API, SSE, web chat page)")
    return run_gateway
