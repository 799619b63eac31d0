"""Running the Kopf operator programmatically with Ringpilot's registry and settings.

`ringpilot controller` calls `run`; tests may call `operator_task` inside their own loop. Without
`RINGPILOT_PEERING` the operator runs standalone; with it, replicas share one ClusterKopfPeering of that
name (also when they watch only some namespaces), and the one with the highest priority runs while the
others wait as hot standbys.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from typing import Any

import kopf

from controller.operator.handlers import RequeueNoise, register
from controller.settings import ControllerSettings
from controller.telemetry.metrics import mark_build
from controller.telemetry.tracing import setup_tracing


def build_registry(settings: ControllerSettings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    register(registry, settings)
    if settings.peering:

        @kopf.on.startup(registry=registry, id="peering")
        def cluster_peering(settings: kopf.OperatorSettings, **_: Any) -> None:
            # One ClusterKopfPeering per shard: a shard's globs need no KopfPeering in every namespace.
            settings.peering.clusterwide = True

    return registry


def peering_priority(settings: ControllerSettings) -> int:
    """The configured priority, or a random one so that two standbys never tie (a tie pauses both)."""
    if settings.peering_priority is not None:
        return settings.peering_priority
    return random.SystemRandom().randint(1, 2**31 - 1)


async def operator_task(settings: ControllerSettings, stop_flag: asyncio.Event | threading.Event | None = None) -> None:
    """The operator as a coroutine (returns when stop_flag is set)."""
    namespaces = list(settings.namespace or [])
    liveness = f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
    peering = settings.peering
    await kopf.operator(
        registry=build_registry(settings),
        standalone=peering is None,
        peering_name=peering,
        priority=peering_priority(settings) if peering else None,
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
