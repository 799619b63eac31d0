"""A conversation turn is one trace: the turn, its tool call and each model request (GenAI attributes).

The turn runs through the real turn worker and engine with the anthropic provider against a local
Messages API (tests/agent's harness); the planted API key and prompt reach no log line and no span.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from agent.settings import AgentSettings
from controller.storage.db import Pool
from controller.telemetry.logformat import build_handler, quiet_chatty_loggers
from controller.telemetry.tracing import CORRELATION_ATTRIBUTE
from tests.agent.conftest import Cluster, build_harness, close_providers, cluster  # noqa: F401 - fixtures
from tests.agent.fakes import FakeMessagesAPI, anthropic_text, anthropic_tool

KEY = "sk-ant-api03-PLANTEDturnKEY0123456789abcdef"
PROMPT = "PLANTED-PROMPT-7f3a9 which versions run in canary"


@pytest.fixture
def fake() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI() as server:
        yield server


@pytest.fixture
def all_logs() -> Iterator[io.StringIO]:
    """Every record at DEBUG, as the process would write it with RINGPILOT_LOG_LEVEL=DEBUG."""
    stream = io.StringIO()
    handler = build_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet_chatty_loggers("DEBUG")
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_turn_its_tool_call_and_model_requests_are_one_trace_and_leak_nothing(
    cluster: Cluster,  # noqa: F811
    db_pool: Pool,
    redis_async: Any,
    fake: FakeMessagesAPI,
    spans: InMemorySpanExporter,
    all_logs: io.StringIO,
) -> None:
    settings = AgentSettings(
        llm_provider="anthropic",
        anthropic_api_key=KEY,
        anthropic_base_url=fake.url,
        llm_model="claude-test",
        llm_max_retries=0,
    )
    harness = build_harness(cluster, db_pool, redis_async, settings)
    fake.add(anthropic_tool("query_deployments", {"ring": 1}), anthropic_text("Canary runs web 1.4.1."))
    tokens = {
        t: sample("ringpilot_llm_tokens_total", provider="anthropic", model="claude-test", type=t)
        for t in ("input", "output")
    }
    turns = sample("ringpilot_chat_turns_total", provider="anthropic", outcome="answered")
    tools = sample("ringpilot_tool_calls_total", tool="query_deployments", outcome="ok")

    harness.start("c", "dev-viewer", PROMPT)
    status = (await harness.answer("c")).status
    assert status.reply == "Canary runs web 1.4.1."

    finished = spans.get_finished_spans()
    [turn] = [s for s in finished if s.name == "chat turn"]
    [tool] = [s for s in finished if s.name == "execute_tool query_deployments"]
    models = [s for s in finished if s.name == "chat claude-test"]
    assert len(models) == 2
    assert {s.context.trace_id for s in (turn, tool, *models)} == {turn.context.trace_id}
    assert all(s.parent is not None and s.parent.span_id == turn.context.span_id for s in (tool, *models))
    assert {s.attributes[CORRELATION_ATTRIBUTE] for s in (turn, tool, *models)} == {"corr-c"}
    first = models[0].attributes
    assert (first["gen_ai.system"], first["gen_ai.request.model"], first["gen_ai.operation.name"]) == (
        "anthropic",
        "claude-test",
        "chat",
    )
    used = [(s.attributes["gen_ai.usage.input_tokens"], s.attributes["gen_ai.usage.output_tokens"]) for s in models]
    assert status.usage is not None
    assert (sum(i for i, _ in used), sum(o for _, o in used)) == (status.usage.input_tokens, status.usage.output_tokens)

    assert sample("ringpilot_llm_tokens_total", provider="anthropic", model="claude-test", type="input") == (
        tokens["input"] + status.usage.input_tokens
    )
    assert sample("ringpilot_llm_tokens_total", provider="anthropic", model="claude-test", type="output") == (
        tokens["output"] + status.usage.output_tokens
    )
    assert sample("ringpilot_chat_turns_total", provider="anthropic", outcome="answered") == turns + 1
    assert sample("ringpilot_tool_calls_total", tool="query_deployments", outcome="ok") == tools + 1

    logged = all_logs.getvalue()
    answering = [line for line in logged.splitlines() if "Answering message" in line]
    assert answering and all('"correlation_id": "corr-c"' in line for line in answering)
    for secret in (KEY, PROMPT):
        assert secret not in logged
        assert not any(secret in s.to_json() for s in finished)
