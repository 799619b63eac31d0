"""Chat benchmark: turn latency (offline, and a model behind the Messages API) and get_context latency.

Starts embedded PostgreSQL and Redis, the API emulator, the real `ringpilot controller` and
`ringpilot worker`, then measures "message appended → reply in status" at 1 and 20 concurrent
conversations (a watch stream timestamps each reply), and `get_context` p50 from Redis and from
PostgreSQL with 1,000,000 stored messages. The bare-Kopf baseline is measured in the same run.

Two providers answer: `offline` (the keyword router, all CPU on this machine) and `anthropic`, the real
SDK against a local Messages API server that answers after `--model-latency-ms` like a model would.
With the offline provider, 20 conversations at once share this machine's two cores with the emulator
and the controller, so their p50 measures CPU per turn; the Messages API rows measure whether turns
wait for each other while their models think.
Usage: .venv/bin/python bench/chat.py [--turns 30] [--messages 1000000] [--model-latency-ms 500] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from kubernetes import client, watch

from controller.devkit.embedded import EmbeddedServices
from controller.devkit.processes import ProcessGroup
from controller.devkit.seeding import apply_crds, seed_rings
from controller.storage.migrating import migrate

GROUP, VERSION, PLURAL = "ringpilot.dev", "v1alpha1", "conversations"
QUESTION = "show me deployments in ring 1"
POLL_MS = 50


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def median_ratio(many: list[float], alone: list[float]) -> float:
    return statistics.median(many) / statistics.median(alone)


class Replies:
    """Watches Conversations and records when each one's `status.answered` reaches a count."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.answered: dict[str, int] = {}
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping:
            stream = watch.Watch().stream(
                self.custom.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, timeout_seconds=30
            )
            for event in stream:
                obj = event["object"]
                with self.cond:
                    count = (obj.get("status") or {}).get("answered", 0)
                    self.answered[obj["metadata"]["name"]] = count
                    self.cond.notify_all()

    def wait(self, name: str, count: int, timeout_seconds: float = 60) -> float:
        deadline = time.monotonic() + timeout_seconds
        with self.cond:
            while self.answered.get(name, 0) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{name} did not answer message {count}")
                self.cond.wait(left)
        return time.perf_counter()


class MessagesAPI:
    """A local Messages API (POST /v1/messages) answering every request with text after a fixed latency."""

    def __init__(self, latency_ms: int) -> None:
        self.latency = latency_ms / 1000
        self.requests = 0
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests += 1
        await asyncio.sleep(self.latency)
        return web.json_response(
            {
                "id": f"msg_bench_{self.requests}",
                "type": "message",
                "role": "assistant",
                "model": body.get("model", "bench"),
                "content": [{"type": "text", "text": "Ring 1 runs web 1.0.0 on 2 targets, all healthy."}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 200, "output_tokens": 20},
            }
        )

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]

    def start(self) -> str:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return f"http://127.0.0.1:{self.port}"


def create(custom: client.CustomObjectsApi, name: str, llm: dict[str, str] | None = None) -> None:
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Conversation",
            "metadata": {"name": name},
            "spec": {"user": "dev-viewer", "messages": [], **({"llm": llm} if llm else {})},
        },
    )


def converse(custom: client.CustomObjectsApi, replies: Replies, name: str, turns: int, out: list[float]) -> None:
    for n in range(1, turns + 1):
        patch = [{"op": "add", "path": "/spec/messages/-", "value": {"id": f"m{n}", "text": QUESTION}}]
        started = time.perf_counter()
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, name, patch, _content_type="application/json-patch+json"
        )
        out.append((replies.wait(name, n) - started) * 1000)


def turn_latency(
    api: client.ApiClient,
    replies: Replies,
    conversations: int,
    turns: int,
    tag: str,
    llm: dict[str, str] | None = None,
) -> list[float]:
    custom = client.CustomObjectsApi(api)
    names = [f"{tag}-{i}" for i in range(conversations)]
    for name in names:
        create(custom, name, llm)
    time.sleep(0.5)
    results: list[list[float]] = [[] for _ in names]
    threads = [
        threading.Thread(target=converse, args=(custom, replies, name, turns, results[i]))
        for i, name in enumerate(names)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [value for chunk in results for value in chunk[1:]]  # the first turn of each warms caches


async def context_latency(database_url: str, redis_url: str, messages: int, samples: int) -> tuple[float, float]:
    """get_context p50 (ms) from Redis and from PostgreSQL over `messages` stored messages."""
    from agent.chat.state import ChatStateManager
    from controller.api.policy import load_policy
    from controller.storage.cache import redis_client
    from controller.storage.db import open_pool

    per_conversation = 100
    conversations = max(1, messages // per_conversation)
    pool = await open_pool(database_url, max_size=4)
    async with pool.connection() as conn:
        columns = "id, namespace, name, user_id, correlation_id"
        async with conn.cursor().copy(f"COPY conversations ({columns}) FROM STDIN") as cp:
            for c in range(conversations):
                await cp.write_row((f"bench-{c}", "default", f"bench-{c}", "dev-viewer", f"corr-{c}"))
        async with conn.cursor().copy(
            "COPY messages (conversation_id, seq, role, content, correlation_id) FROM STDIN"
        ) as cp:
            for c in range(conversations):
                for s in range(1, per_conversation + 1):
                    role = "user" if s % 2 else "assistant"
                    body = {"text": f"message {s} of conversation {c}: {'x' * 60}", "final": role == "assistant"}
                    text = json.dumps(body)
                    await cp.write_row((f"bench-{c}", s, role, text, f"corr-{c}"))
        await conn.execute("ANALYZE messages")
    redis = redis_client(redis_url)
    policy = load_policy()
    cold = ChatStateManager(pool, None, policy)
    warm = ChatStateManager(pool, redis, policy)
    picks = [f"bench-{random.randrange(conversations)}" for _ in range(samples)]
    from_pg: list[float] = []
    for cid in picks:
        started = time.perf_counter()
        await cold.get_context(cid)
        from_pg.append((time.perf_counter() - started) * 1000)
    hot = picks[: max(1, samples // 5)]
    for cid in hot:
        await warm.get_context(cid)
    from_redis: list[float] = []
    for _ in range(samples // len(hot)):
        for cid in hot:
            started = time.perf_counter()
            context = await warm.get_context(cid)
            from_redis.append((time.perf_counter() - started) * 1000)
            assert context.source == "redis"
    await redis.aclose()
    await pool.close()
    return statistics.median(from_redis), statistics.median(from_pg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=30, help="turns per conversation")
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages stored for get_context")
    parser.add_argument("--samples", type=int, default=2000, help="get_context calls measured per source")
    parser.add_argument("--skip-baseline", action="store_true", help="do not measure the bare-Kopf baseline")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (RINGPILOT_THREADS; 8 is the default)")
    parser.add_argument("--model-latency-ms", type=int, default=500, help="how long the local Messages API thinks")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from baselines import kopf_objects_per_second, start_emulator

    kopf = None if args.skip_baseline else kopf_objects_per_second()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        group = ProcessGroup()
        model = MessagesAPI(args.model_latency_ms)
        model_url = model.start()
        with EmbeddedServices(workdir / "services", durable=False) as services:
            migrate(services.database_url)
            try:
                api = start_emulator(group, workdir)
                apply_crds(api)
                seed_rings(api)
                env = {
                    **os.environ,
                    "KUBECONFIG": str(workdir / "kubeconfig"),
                    "RINGPILOT_DATABASE_URL": services.database_url,
                    "RINGPILOT_REDIS_URL": services.redis_url,
                    "RINGPILOT_LIVENESS_PORT": "0",
                    "RINGPILOT_THREADS": str(args.threads),
                    "RINGPILOT_LOG_LEVEL": "WARNING",
                    "RINGPILOT_RESYNC_INTERVAL_SECONDS": "60",
                    "RINGPILOT_POLL_INTERVAL_MS": str(POLL_MS),
                    "RINGPILOT_LLM_PROVIDER": "offline",  # a conversation asks for the Messages API in spec.llm
                    "RINGPILOT_ANTHROPIC_API_KEY": "bench-key",
                    "RINGPILOT_ANTHROPIC_BASE_URL": model_url,
                }
                ringpilot = [sys.executable, "-m", "controller.cli"]
                group.spawn("controller", [*ringpilot, "controller"], env, workdir / "controller.log")
                group.spawn("worker", [*ringpilot, "worker"], env, workdir / "worker.log")
                replies = Replies(api)
                turn_latency(api, replies, 1, 3, "warmup")
                one = turn_latency(api, replies, 1, args.turns, "one")
                twenty = turn_latency(api, replies, 20, max(3, args.turns // 3), "twenty")
                remote = {"provider": "anthropic"}
                turn_latency(api, replies, 1, 2, "warm-model", remote)
                model_one = turn_latency(api, replies, 1, max(3, args.turns // 2), "model-one", remote)
                model_twenty = turn_latency(api, replies, 20, max(3, args.turns // 3), "model-twenty", remote)
                replies.stopping = True
            finally:
                group.stop_all()
            redis_p50, pg_p50 = asyncio.run(
                context_latency(services.database_url, services.redis_url, args.messages, args.samples)
            )
    print(
        f"Ringpilot chat benchmark ({platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores; {args.threads} worker threads; worker poll timeout {POLL_MS} ms; "
        f"question: {QUESTION!r})"
    )
    rows: list[tuple[str, Any, str]] = []
    if kopf is not None:
        rows += [
            ("bare Kopf handler on the emulator (objects/s)", kopf, "baseline"),
            ("  one bare Kopf reconcile at that rate (ms)", 1000 / kopf, "baseline"),
        ]
    lat = args.model_latency_ms
    rows += [
        ("turn latency, offline, 1 conversation, p50 (ms)", statistics.median(one), "<= 150"),
        ("turn latency, offline, 1 conversation, p95 (ms)", percentile(one, 0.95), ""),
        ("turn latency, offline, 20 conversations, p50 (ms)", statistics.median(twenty), ""),
        ("turn latency, offline, 20 conversations, p95 (ms)", percentile(twenty, 0.95), ""),
        ("  20 / 1 conversations, p50 (x; CPU-bound on this machine)", median_ratio(twenty, one), ""),
        (f"turn latency, Messages API ({lat} ms model), 1 conversation, p50 (ms)", statistics.median(model_one), ""),
        (f"turn latency, Messages API ({lat} ms model), 1 conversation, p99 (ms)", percentile(model_one, 0.99), ""),
        (
            f"turn latency, Messages API ({lat} ms model), 20 conversations, p50 (ms)",
            statistics.median(model_twenty),
            "",
        ),
        (
            f"turn latency, Messages API ({lat} ms model), 20 conversations, p99 (ms)",
            percentile(model_twenty, 0.99),
            "",
        ),
        ("  20 / 1 conversations, p50 (x)", median_ratio(model_twenty, model_one), "<= 2"),
        (f"get_context from Redis, p50 (ms), {args.messages:,} messages stored", redis_p50, "<= 2"),
        (f"get_context from PostgreSQL, p50 (ms), {args.messages:,} messages stored", pg_p50, "<= 10"),
    ]
    print(f"{'measurement':<66} {'value':>10}  target")
    for label, value, target in rows:
        print(f"{label:<66} {value:>10.1f}  {target}")


if __name__ == "__main__":
    main()
