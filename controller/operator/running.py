"""Running the Kopf operator programmatically with Ringpilot's registry and settings.

`ringpilot controller` calls `run`; tests may call `operator_task` inside their own loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import kopf

from controller.operator.handlers import RequeueNoise, register
from controller.settings import ControllerSettings
from controller.telemetry.metrics import mark_build
from controller.telemetry.tracing import setup_tracing


def build_registry(settings: ControllerSettings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    register(registry, settings)
    return registry


async def operator_task(settings: ControllerSettings, stop_flag: asyncio.Event | threading.Event | None = None) -> None:
    """The operator as a coroutine (returns when stop_flag is set)."""
    namespaces = list(settings.namespace or [])
    liveness = f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
    await kopf.operator(
        registry=build_registry(settings),
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
        stop_flag=stop_flag,
    )


def run(settings: ControllerSettings) -> None:
    """Run the operator until interrupted."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequeueNoise())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # a line per admission request otherwise
    setup_tracing("ringpilot-controller")
    mark_build()
    asyncio.run(operator_task(settings))
