"""Fixtures of the agent tests: an in-process conversation engine on the API emulator, PostgreSQL and Redis.

`cluster` is the emulator with our CRDs, rings 0-4 and the sample apps (web, payments) made ready by
the simulated kubelet. `harness` wires the real engine, registry, chat state and turn worker to it,
with the offline provider unless a test passes settings for another; retries it schedules are
recorded instead of enqueued.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio
from kubernetes import client

from agent.chat.state import ChatStateManager
from agent.chat.turnlog import TurnLog
from agent.conversation.engine import Engine
from agent.conversation.worker import TurnWorker
from agent.health.breakers import BreakerBoard
from agent.llm.choosing import ProviderFactory
from agent.settings import AgentSettings
from agent.tools.base import HealthProbe, ToolContext, ToolServices
from agent.tools.registry import ToolRegistry
from controller.api.conversation import Conversation
from controller.api.group import GROUP, VERSION
from controller.api.policy import Policy, load_policy
from controller.devkit.kubelet import SimulatedKubelet
from controller.devkit.seeding import apply_crds, seed_rings
from controller.storage.db import Pool
from tests.fixtures.kube import api_client, emulator  # noqa: F401  (fixture)


@dataclass
class Cluster:
    admin: client.ApiClient
    url: str

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.admin)

    def create(self, plural: str, body: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
        result: dict[str, Any] = self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
        return result

    def get(self, plural: str, name: str, namespace: str = "default") -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        return result

    def list(self, plural: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.custom.list_cluster_custom_object(GROUP, VERSION, plural)["items"]
        return items

    def patch_status(self, plural: str, name: str, status: dict[str, Any], namespace: str = "default") -> None:
        self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, plural, name, {"status": status})


@pytest.fixture
def cluster(emulator: Any) -> Iterator[Cluster]:  # noqa: F811
    admin = api_client(emulator.url)
    apply_crds(admin)
    seed_rings(admin)
    kubelet = SimulatedKubelet(admin, rollout_delay_seconds=0.01)
    kubelet.start()
    apps = client.AppsV1Api(admin)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        items = apps.list_deployment_for_all_namespaces().items
        if items and all((d.status and d.status.ready_replicas) == d.spec.replicas for d in items):
            break
        time.sleep(0.02)
    try:
        yield Cluster(admin, emulator.url)
    finally:
        stopping = threading.Thread(target=kubelet.stop)
        stopping.start()
        time.sleep(0.1)
        emulator.stop_thread()
        stopping.join()
        admin.close()


BUILT: list[Harness] = []


@dataclass
class Harness:
    """The engine and turn worker of one test, plus helpers to drive Conversations."""

    cluster: Cluster
    pool: Pool
    redis: Any
    policy: Policy
    services: ToolServices
    chat: ChatStateManager
    turnlog: TurnLog
    engine: Engine
    worker: TurnWorker
    registry: ToolRegistry
    retries: list[tuple[Any, ...]] = field(default_factory=list)

    def start(self, name: str, user: str, *texts: str, **spec: Any) -> dict[str, Any]:
        messages = [{"id": f"m{i + 1}", "text": t} for i, t in enumerate(texts)]
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Conversation",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"user": user, "messages": messages, "correlationId": f"corr-{name}", **spec},
        }
        return self.cluster.create("conversations", body)

    def say(self, name: str, text: str) -> str:
        current = self.cluster.get("conversations", name)
        messages = current["spec"].get("messages", [])
        message_id = f"m{len(messages) + 1}"
        self.cluster.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            "default",
            "conversations",
            name,
            [{"op": "add", "path": "/spec/messages/-", "value": {"id": message_id, "text": text}}],
            _content_type="application/json-patch+json",
        )
        return message_id

    def conversation(self, name: str) -> Conversation:
        return Conversation.from_body(self.cluster.get("conversations", name))

    async def answer(self, name: str) -> Conversation:
        body = self.cluster.get("conversations", name)
        await self.worker.handle("default", name, body["metadata"]["uid"], f"corr-{name}")
        return self.conversation(name)

    async def chat_turn(self, name: str, text: str) -> str:
        self.say(name, text)
        conversation = await self.answer(name)
        return conversation.status.reply or ""

    def context(self, user: str, name: str = "c") -> ToolContext:
        return ToolContext(
            user=user,
            role=self.policy.role_for(user),
            permissions=self.policy.permissions_for(user),
            correlation_id=f"corr-{name}",
            namespace="default",
            conversation=name,
            conversation_uid=f"uid-{name}",
            services=self.services,
        )


def build_harness(
    cluster: Cluster,
    pool: Pool,
    redis_client: Any,
    settings: AgentSettings,
    registry: ToolRegistry | None = None,
    probes: tuple[HealthProbe, ...] = (),
) -> Harness:
    policy = load_policy()
    worker_client = client.ApiClient(client.Configuration(host=cluster.url))

    breakers = BreakerBoard(
        redis_client, fail_max=settings.breaker_fail_max, reset_seconds=settings.breaker_reset_seconds
    )

    async def known_apps() -> list[str]:
        return ["payments", "web"]

    services = ToolServices(
        policy=policy,
        kube=worker_client,
        pool=pool,
        redis=redis_client,
        breakers=breakers,
        probes=probes,
        known_apps=known_apps,
    )
    chat = ChatStateManager(
        pool, redis_client, policy, ttl_seconds=settings.context_ttl_seconds, window=settings.context_messages
    )
    turnlog = TurnLog(pool, chat)
    registry = registry or ToolRegistry()
    engine = Engine(
        chat=chat,
        turnlog=turnlog,
        registry=registry,
        providers=ProviderFactory(settings),
        services=services,
        settings=settings,
        breakers=breakers,
    )
    retries: list[tuple[Any, ...]] = []
    worker = TurnWorker(
        engine=engine,
        turnlog=turnlog,
        pool=pool,
        api_client=cluster.admin,
        schedule_retry=lambda *args: retries.append(args),
        clock=lambda: datetime.now(UTC),
    )
    harness = Harness(cluster, pool, redis_client, policy, services, chat, turnlog, engine, worker, registry, retries)
    BUILT.append(harness)
    return harness


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> AgentSettings:
    for key in ("RINGPILOT_LLM_PROVIDER", "RINGPILOT_ANTHROPIC_API_KEY", "RINGPILOT_OPENAI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    return AgentSettings(turn_min_backoff_ms=100, turn_max_backoff_ms=400, turn_max_attempts=3)


@pytest.fixture
def harness(cluster: Cluster, db_pool: Pool, redis_async: redis.asyncio.Redis, settings: AgentSettings) -> Harness:
    return build_harness(cluster, db_pool, redis_async, settings)


@pytest.fixture(autouse=True)
async def close_providers() -> AsyncIterator[None]:
    """Close the HTTP sessions of every harness a test built."""
    yield
    while BUILT:
        await BUILT.pop().engine.providers.aclose()
