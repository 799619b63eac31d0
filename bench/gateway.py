"""Gateway benchmark: request overhead, and post → first SSE event at 1 and 50 conversations, next to bare FastAPI.

Starts embedded PostgreSQL and Redis, the API emulator, the real `ringpilot controller`, `ringpilot worker`
and `ringpilot gateway` (tokens mode, offline provider), and a bare FastAPI app under uvicorn with one JSON
endpoint and one SSE endpoint that answers a POST with an event (`bare_app` below). All are measured in the
same run: GET latency (the gateway's `/api/v1/whoami`, authenticated, vs. the bare `/ping`), and the time
from posting a message to the first event of its stream (the gateway's `turn.started`, written by a worker,
vs. the bare app's event). Usage: .venv/bin/python bench/gateway.py [--requests 500] [--turns 10]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.sse import EventSourceResponse, ServerSentEvent
from httpx_sse import aconnect_sse

HERE = Path(__file__).resolve().parent
USER, TOKEN = "dev-viewer", "bench-token-of-dev-viewer"
QUESTION = "show me deployments in ring 1"
POLL_MS = 50

# ---- the bare FastAPI baseline (run by uvicorn in its own process: `gateway:bare_app`) ----
bare_app = FastAPI()
_posted: dict[str, asyncio.Event] = {}


@bare_app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


@bare_app.post("/streams/{name}")
async def post(name: str) -> dict[str, str]:
    _posted.setdefault(name, asyncio.Event()).set()
    return {"messageId": name}


@bare_app.get("/streams/{name}", response_class=EventSourceResponse)
async def stream(name: str) -> AsyncIterator[ServerSentEvent]:
    posted = _posted.setdefault(name, asyncio.Event())
    yield ServerSentEvent(comment="open")
    await posted.wait()
    posted.clear()
    yield ServerSentEvent(id="1", event="turn.started", data={"messageId": name})


# ---- measuring ----
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def get_latency(url: str, headers: dict[str, str], count: int) -> list[float]:
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        for _ in range(20):
            (await client.get(url)).raise_for_status()
        out: list[float] = []
        for _ in range(count):
            started = time.perf_counter()
            (await client.get(url)).raise_for_status()
            out.append((time.perf_counter() - started) * 1000)
    return out


DROPS = {"streams dropped by the server": 0}


async def first_event_ms(client: httpx.AsyncClient, events_url: str, last_id: int, post: Any) -> tuple[float, int]:
    """Open the stream after `last_id`, post, and time the first event; (ms, its id). A dropped stream is
    reopened from `last_id` (as the CLI does), and the time keeps running."""
    started: float | None = None
    while True:
        try:
            async with aconnect_sse(client, "GET", events_url, headers={"Last-Event-ID": str(last_id)}) as source:
                source.response.raise_for_status()
                iterator = source.aiter_sse()
                if started is None:
                    started = time.perf_counter()
                    await post()
                async for sse in iterator:
                    if sse.data:
                        return (time.perf_counter() - started) * 1000, int(sse.id or 0)
        except httpx.TransportError:
            DROPS["streams dropped by the server"] += 1


async def bare_turns(base: str, conversations: int, turns: int) -> list[float]:
    async def one(name: str) -> list[float]:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            out = []
            for _ in range(turns):

                async def post() -> None:
                    (await client.post(f"/streams/{name}")).raise_for_status()

                ms, _ = await first_event_ms(client, f"/streams/{name}", 0, post)
                out.append(ms)
            return out

    chunks = await asyncio.gather(*(one(f"bare-{conversations}-{i}") for i in range(conversations)))
    return [value for chunk in chunks for value in chunk[1:]]  # each stream's first turn warms it


async def gateway_turns(base: str, conversations: int, turns: int) -> list[float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def one(index: int) -> list[float]:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
            created = (await client.post("/api/v1/conversations", json={})).raise_for_status().json()
            name, last_id, out = created["name"], 0, []
            for turn in range(turns):

                async def post(turn: int = turn) -> None:
                    body = {"id": f"b{conversations}-{index}-{turn}", "text": QUESTION}
                    (await client.post(f"/api/v1/conversations/{name}/messages", json=body)).raise_for_status()

                ms, last_id = await first_event_ms(client, f"/api/v1/conversations/{name}/events", last_id, post)
                out.append(ms)
                await wait_completed(client, name, last_id)
                last_id = await head(client, name)
            return out

    chunks = await asyncio.gather(*(one(i) for i in range(conversations)))
    return [value for chunk in chunks for value in chunk[1:]]


async def head(client: httpx.AsyncClient, name: str) -> int:
    view = (await client.get(f"/api/v1/conversations/{name}")).raise_for_status().json()
    return int(view.get("lastEventId") or 0)


async def wait_completed(client: httpx.AsyncClient, name: str, after: int) -> None:
    """Follow the stream until the turn completes, so the next turn starts from a quiet conversation."""
    url = f"/api/v1/conversations/{name}/events"
    while True:
        try:
            async with aconnect_sse(client, "GET", url, headers={"Last-Event-ID": str(after)}) as source:
                async for sse in source.aiter_sse():
                    if sse.id and sse.id.isdigit():
                        after = max(after, int(sse.id))
                    if sse.event in ("turn.completed", "turn.failed"):
                        return
        except httpx.TransportError:
            DROPS["streams dropped by the server"] += 1


def wait_http(url: str, headers: dict[str, str] | None = None, timeout_seconds: float = 60) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500, help="GETs measured per endpoint")
    parser.add_argument("--turns", type=int, default=10, help="turns per conversation")
    args = parser.parse_args()

    from controller.devkit.embedded import EmbeddedServices
    from controller.devkit.processes import ProcessGroup
    from controller.devkit.seeding import apply_crds, seed_rings
    from controller.devkit.stack import free_port
    from controller.storage.migrating import migrate

    sys.path.insert(0, str(HERE))
    from baselines import start_emulator

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        group = ProcessGroup()
        with EmbeddedServices(workdir / "services", durable=False) as services:
            migrate(services.database_url)
            try:
                api = start_emulator(group, workdir)
                apply_crds(api)
                seed_rings(api)
                tokens = workdir / "gateway-tokens.json"
                tokens.write_text(json.dumps([{"sha256": hashlib.sha256(TOKEN.encode()).hexdigest(), "user": USER}]))
                gateway_port, bare_port = free_port(), free_port()
                env = {key: value for key, value in os.environ.items() if not key.startswith("ANTHROPIC_")}
                env.update(
                    {
                        "KUBECONFIG": str(workdir / "kubeconfig"),
                        "RINGPILOT_DATABASE_URL": services.database_url,
                        "RINGPILOT_REDIS_URL": services.redis_url,
                        "RINGPILOT_LIVENESS_PORT": "0",
                        "RINGPILOT_METRICS_PORT": "0",
                        "RINGPILOT_THREADS": "8",
                        "RINGPILOT_LOG_LEVEL": "WARNING",
                        "RINGPILOT_RESYNC_INTERVAL_SECONDS": "60",
                        "RINGPILOT_POLL_INTERVAL_MS": str(POLL_MS),
                        "RINGPILOT_GATEWAY_PORT": str(gateway_port),
                        "RINGPILOT_GATEWAY_AUTH": "tokens",
                        "RINGPILOT_GATEWAY_TOKEN_FILE": str(tokens),
                        "RINGPILOT_GATEWAY_TURNS_PER_MINUTE": "100000",
                    }
                )
                ringpilot = [sys.executable, "-m", "controller.cli"]
                group.spawn("controller", [*ringpilot, "controller"], env, workdir / "controller.log")
                group.spawn("worker", [*ringpilot, "worker"], env, workdir / "worker.log")
                group.spawn("gateway", [*ringpilot, "gateway"], env, workdir / "gateway.log")
                bare = [sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "--port", str(bare_port)]
                group.spawn("bare", [*bare, "--log-level", "warning", "gateway:bare_app"], env, workdir / "bare.log")
                gateway, base = f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{bare_port}"
                auth = {"Authorization": f"Bearer {TOKEN}"}
                try:
                    wait_http(f"{gateway}/api/v1/whoami", auth)
                    wait_http(f"{base}/ping")
                except TimeoutError:
                    for name in ("gateway", "bare"):
                        print(f"--- {name}.log\n" + (workdir / f"{name}.log").read_text()[-3000:], file=sys.stderr)
                    raise
                bare_get = asyncio.run(get_latency(f"{base}/ping", {}, args.requests))
                gateway_get = asyncio.run(get_latency(f"{gateway}/api/v1/whoami", auth, args.requests))
                bare_one = asyncio.run(bare_turns(base, 1, args.turns))
                bare_fifty = asyncio.run(bare_turns(base, 50, max(3, args.turns // 3)))
                asyncio.run(gateway_turns(gateway, 1, 3))  # warm-up: the worker's first turn loads the router
                one = asyncio.run(gateway_turns(gateway, 1, args.turns))
                fifty = asyncio.run(gateway_turns(gateway, 50, max(3, args.turns // 3)))
            finally:
                group.stop_all()
    report(bare_get, gateway_get, bare_one, bare_fifty, one, fifty)


def report(
    bare_get: list[float],
    gateway_get: list[float],
    bare_one: list[float],
    bare_fifty: list[float],
    one: list[float],
    fifty: list[float],
) -> None:
    print(
        f"Ringpilot gateway benchmark ({platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores; offline provider; worker poll timeout {POLL_MS} ms; question: {QUESTION!r})"
    )
    overhead = statistics.median(gateway_get) - statistics.median(bare_get)
    rows: list[tuple[str, float | None, float, str]] = [
        (
            "GET, p50 (ms): bare /ping | gateway /api/v1/whoami",
            statistics.median(bare_get),
            statistics.median(gateway_get),
            f"{statistics.median(gateway_get) / statistics.median(bare_get):.1f}x",
        ),
        (
            "GET, p99 (ms): bare /ping | gateway /api/v1/whoami",
            percentile(bare_get, 0.99),
            percentile(gateway_get, 0.99),
            f"{percentile(gateway_get, 0.99) / percentile(bare_get, 0.99):.1f}x",
        ),
        ("gateway request overhead over bare FastAPI, p50 (ms)", None, overhead, "auth, middleware, envelope"),
        (
            "post → first SSE event, 1 conversation, p50 (ms)",
            statistics.median(bare_one),
            statistics.median(one),
            f"{statistics.median(one) / statistics.median(bare_one):.0f}x",
        ),
        ("post → first SSE event, 1 conversation, p99 (ms)", percentile(bare_one, 0.99), percentile(one, 0.99), ""),
        (
            "post → first SSE event, 50 conversations, p50 (ms)",
            statistics.median(bare_fifty),
            statistics.median(fifty),
            f"{statistics.median(fifty) / statistics.median(bare_fifty):.0f}x",
        ),
        (
            "post → first SSE event, 50 conversations, p99 (ms)",
            percentile(bare_fifty, 0.99),
            percentile(fifty, 0.99),
            "",
        ),
    ]
    print(f"{'measurement':<56} {'bare FastAPI':>13} {'gateway':>10}  ratio")
    for label, baseline, value, ratio in rows:
        shown = "" if baseline is None else f"{baseline:.1f}"
        print(f"{label:<56} {shown:>13} {value:>10.1f}  {ratio}")
    for label, count in DROPS.items():
        print(f"{label + ' (reopened from Last-Event-ID)':<56} {'':>13} {count:>10}")


if __name__ == "__main__":
    main()
