"""The worker-side runtime and actor: built from settings and KUBECONFIG, answering through the actor,
scheduling delayed retries on the broker, and probing every component for check_health."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from agent.runtime import AgentRuntime, schedule_retry
from dramatiq.brokers.stub import StubBroker

from agent import runtime as runtime_module
from agent.health.probes import KnownApps
from agent.settings import AgentSettings
from controller.api.conversation import TURN_ACTOR, TURN_QUEUE
from tests.agent.conftest import Cluster


@pytest.fixture
def stub_broker() -> Iterator[StubBroker]:
    from dramatiq import broker as brokers

    previous = brokers.global_broker
    broker = StubBroker()
    broker.declare_queue(TURN_QUEUE)
    dramatiq.set_broker(broker)
    try:
        yield broker
    finally:
        broker.close()
        brokers.global_broker = previous


@pytest.fixture
def agent_runtime(
    cluster: Cluster,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stub_broker: StubBroker,
) -> Iterator[AgentRuntime]:
    import yaml

    from controller.devkit.emulator.server import kubeconfig as make_kubeconfig

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(make_kubeconfig(cluster.url)))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("RINGPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("RINGPILOT_REDIS_URL", redis_url)
    for key in ("RINGPILOT_LLM_PROVIDER", "RINGPILOT_ANTHROPIC_API_KEY", "RINGPILOT_OPENAI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(runtime_module, "_runtime", None)
    built = runtime_module.runtime()
    assert runtime_module.runtime() is built
    try:
        yield built
    finally:
        built.close()


def test_the_actor_answers_a_conversation_through_the_runtime(agent_runtime: AgentRuntime, cluster: Cluster) -> None:
    from agent.actors import answer_turn

    assert (answer_turn.actor_name, answer_turn.queue_name) == (TURN_ACTOR, TURN_QUEUE)
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


def test_a_delayed_try_is_enqueued_on_the_broker(stub_broker: StubBroker) -> None:
    schedule_retry("default", "c", "u-1", "m1", "corr-1", 250, 2)
    delayed = stub_broker.queues[f"{TURN_QUEUE}.DQ"]
    assert delayed.qsize() == 1
    decoded: Any = dramatiq.Message.decode(delayed.get_nowait())
    assert decoded.actor_name == TURN_ACTOR and decoded.options["eta"] > 0
    assert decoded.kwargs == {
        "namespace": "default",
        "name": "c",
        "uid": "u-1",
        "message_id": "m1",
        "correlation_id": "corr-1",
    }
    assert decoded.options["correlation_id"] == "corr-1"


def test_every_component_probe_answers(agent_runtime: AgentRuntime) -> None:
    probes = agent_runtime.worker.engine.services.probes
    results = {p.name: agent_runtime.run(p.check()) for p in probes}
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
    known = agent_runtime.worker.engine.services.known_apps
    assert known is not None and agent_runtime.run(known()) == ["payments", "web"]
    assert isinstance(known, KnownApps)


def test_the_runtime_needs_a_database() -> None:
    with pytest.raises(RuntimeError, match="RINGPILOT_DATABASE_URL"):
        AgentRuntime(AgentSettings(database_url=None))
