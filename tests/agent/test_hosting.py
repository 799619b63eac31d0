"""The agent in a worker process: opened once by the resources middleware from settings and KUBECONFIG,
answering through the `answer_turn` actor, scheduling delayed tries through the one enqueue path, and
probing every component for check_health."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from dramatiq.asyncio import EventLoopThread, get_event_loop_thread
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

from agent.health.probes import KnownApps
from agent.hosting import build_turn_worker, retry_scheduler
from agent.settings import AgentSettings
from controller.api.conversation import TURN_ACTOR, TURN_QUEUE
from controller.messaging.dispatching import Dispatcher, message_id_for
from controller.settings import WorkerSettings
from controller.worker import resources
from tests.agent.conftest import Cluster


@pytest.fixture
def stub_broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    broker.declare_queue(TURN_QUEUE)
    try:
        yield broker
    finally:
        broker.close()


def boot(broker: StubBroker, settings: WorkerSettings) -> tuple[AsyncIO, resources.WorkerResources]:
    loop, middleware = AsyncIO(), resources.WorkerResources(settings)
    loop.before_worker_boot(broker, None)
    middleware.before_worker_boot(broker, None)
    return loop, middleware


@pytest.fixture
def worker_process(
    cluster: Cluster,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stub_broker: StubBroker,
) -> Iterator[EventLoopThread]:
    import yaml

    from controller.devkit.emulator.server import kubeconfig as make_kubeconfig

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(make_kubeconfig(cluster.url)))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("RINGPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("RINGPILOT_REDIS_URL", redis_url)
    for key in ("RINGPILOT_LLM_PROVIDER", "RINGPILOT_ANTHROPIC_API_KEY", "RINGPILOT_OPENAI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    loop, middleware = boot(stub_broker, WorkerSettings(database_url=database_url, redis_url=redis_url))
    thread = get_event_loop_thread()
    assert thread is not None
    try:
        yield thread
    finally:
        middleware.after_worker_shutdown(stub_broker, None)
        loop.after_worker_shutdown(stub_broker, None)


def test_the_actor_answers_a_conversation_through_the_agent_opened_at_boot(
    worker_process: EventLoopThread, cluster: Cluster
) -> None:
    from controller.worker.actors import answer_turn

    assert (answer_turn.actor_name, answer_turn.queue_name) == (TURN_ACTOR, TURN_QUEUE)
    assert set(resources.current().handlers) == {TURN_ACTOR}
    created = cluster.create(
        "conversations",
        {
            "apiVersion": "ringpilot.dev/v1alpha1",
            "kind": "Conversation",
            "metadata": {"name": "c"},
            "spec": {"user": "dev-viewer", "messages": [{"id": "m1", "text": "show me deployments in ring 0"}]},
        },
    )
    answer_turn.fn("default", "c", created["metadata"]["uid"], "m1", "corr-rt")
    status = cluster.get("conversations", "c")["status"]
    assert status["answered"] == 1 and status["reply"].startswith("Deployments in ring 0 (Lab):")
    assert status["correlationId"] == "corr-rt"


def test_a_delayed_try_is_enqueued_with_the_message_id_of_its_key(stub_broker: StubBroker) -> None:
    retry_scheduler(Dispatcher(stub_broker).enqueue)("default", "c", "u-1", "m1", "corr-1", 250, 2)
    delayed = stub_broker.queues[f"{TURN_QUEUE}.DQ"]
    assert delayed.qsize() == 1
    decoded: Any = dramatiq.Message.decode(delayed.get_nowait())
    assert decoded.actor_name == TURN_ACTOR and decoded.options["eta"] > 0
    assert decoded.message_id == message_id_for("turn/u-1/m1/retry-2")
    assert decoded.kwargs == {
        "namespace": "default",
        "name": "c",
        "uid": "u-1",
        "message_id": "m1",
        "correlation_id": "corr-1",
    }
    assert decoded.options["correlation_id"] == "corr-1"


def test_every_component_probe_answers(worker_process: EventLoopThread, redis_url: str) -> None:
    from controller.storage.cache import redis_client

    opened = resources.current()
    assert opened.pool is not None

    async def build() -> Any:
        redis = redis_client(redis_url)
        worker, providers = await build_turn_worker(
            AgentSettings(),
            pool=opened.pool,
            api_client=opened.api_client,
            enqueue=opened.dispatcher.enqueue,
            redis=redis,
        )
        services = worker.engine.services
        results = {p.name: await p.check() for p in services.probes}
        known = services.known_apps
        apps = await known() if known is not None else None
        await providers.aclose()
        await redis.aclose()
        return results, known, apps

    results, known, apps = worker_process.run_coroutine(build())
    assert set(results) == {
        "kubernetes-api",
        "postgresql",
        "redis",
        "broker-queues",
        "llm-provider",
        "execution-plane-kubernetes",
    }
    assert all(ok for ok, _ in results.values()), results
    assert results["llm-provider"][1] == "offline router (no external model)"
    assert results["execution-plane-kubernetes"][1] == "5 ring namespaces, 10 workloads"
    assert apps == ["payments", "web"]
    assert isinstance(known, KnownApps)


def test_a_worker_without_a_database_refuses_turns_naming_the_variable(
    stub_broker: StubBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster: Cluster
) -> None:
    import yaml

    from controller.devkit.emulator.server import kubeconfig as make_kubeconfig
    from controller.worker.actors import answer_turn

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(make_kubeconfig(cluster.url)))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    loop, middleware = boot(stub_broker, WorkerSettings(database_url=None))
    try:
        with pytest.raises(RuntimeError, match="RINGPILOT_DATABASE_URL"):
            answer_turn.fn("default", "c", "u-1", "m1", "corr-1")
    finally:
        middleware.after_worker_shutdown(stub_broker, None)
        loop.after_worker_shutdown(stub_broker, None)
