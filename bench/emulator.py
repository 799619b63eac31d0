"""Print the stack's baselines (bare Kopf on the emulator, bare dramatiq on Redis), and how fast the emulator
lists 1,000 objects next to a bare aiohttp endpoint that serves the same bytes, in the same process.

Later benchmarks (bench/chat.py, bench/orchestration.py, bench/drift.py) measure the same
baselines in their own run and print their figures as ratios against them.
Usage: .venv/bin/python bench/emulator.py
"""

from __future__ import annotations

import os
import platform
import statistics
import threading
import time
from typing import Any

import requests
from aiohttp import web
from baselines import CRD, GROUP, measure

from controller.devkit.emulator import EmulatorServer
from controller.devkit.emulator.preparing import WriteOptions

ITEMS = f"/apis/{GROUP}/v1/namespaces/default/items"


def _median_get(url: str, rounds: int = 20) -> float:
    session = requests.Session()
    session.get(url, timeout=30).raise_for_status()  # warm
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        session.get(url, timeout=30).raise_for_status()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def list_seconds(objects: int = 1000) -> tuple[float, float]:
    """(median seconds to list `objects` items from the emulator, the same bytes from a bare aiohttp handler)."""
    with EmulatorServer() as emulator:
        emulator.apply_crd(CRD)
        kind = emulator.cluster.registry.lookup(GROUP, "v1", "items")

        def fill() -> None:
            for i in range(objects):
                body: dict[str, Any] = {"apiVersion": f"{GROUP}/v1", "kind": "Item", "metadata": {"name": f"i{i:05}"}}
                emulator.cluster.create(kind, "default", body, WriteOptions())

        emulator.call(fill)
        listed = _median_get(emulator.url + ITEMS)
        payload = requests.get(emulator.url + ITEMS, timeout=30).content

    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=payload, content_type="application/json")

    app = web.Application()
    app.router.add_get("/items", serve)
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        import asyncio

        loop = asyncio.new_event_loop()
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        holder["port"] = runner.addresses[0][1]
        holder["loop"], holder["runner"] = loop, runner
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    bare = _median_get(f"http://127.0.0.1:{holder['port']}/items")
    holder["loop"].call_soon_threadsafe(holder["loop"].stop)
    thread.join(10)
    return listed, bare


def main() -> None:
    results = measure()
    print(
        f"Ringpilot stack baselines ({platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores)"
    )
    print(f"{'measurement':<52} {'value':>12}")
    print(f"{'bare Kopf handler on the emulator (objects/s)':<52} {results['kopf_objects_per_second']:>12.1f}")
    print(
        f"{'bare dramatiq no-op on Redis, 1 proc x 4 thr (msg/s)':<52} {results['dramatiq_messages_per_second']:>12.1f}"
    )
    listed, bare = list_seconds()
    print(f"{'list 1,000 objects from the emulator (ms, median)':<52} {listed * 1000:>12.1f}")
    print(f"{'the same bytes from a bare aiohttp handler (ms)':<52} {bare * 1000:>12.1f}")
    print(f"{'emulator / bare':<52} {listed / bare:>11.1f}x")


if __name__ == "__main__":
    main()
