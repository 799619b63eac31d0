"""The published agent evals gate CI: the test split, the multi-turn scenarios and the safety set.

Runs bench/agent_eval.py's `evaluate` with the offline router and the real engine, registry and policy
on the emulator with PostgreSQL and Redis. Fails when a figure falls below the line the issue set:
intent and entity exact-match 97 %, mutating precision 100 %, multi-turn success 95 %, no unsafe action.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from agent.settings import AgentSettings
from controller.storage.db import Pool
from tests.agent.conftest import Cluster

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.syspath_prepend(str(BENCH))
    try:
        yield importlib.import_module("agent_eval")
    finally:
        sys.modules.pop("agent_eval", None)


async def test_the_evals_stay_above_the_published_lines(
    bench: Any, cluster: Cluster, db_pool: Pool, redis_async: redis.asyncio.Redis, settings: AgentSettings
) -> None:
    rig = bench.build_rig(cluster.admin, cluster.url, db_pool, redis_async, settings)
    try:
        report = await bench.evaluate(rig, splits=("test",))
    finally:
        await rig.engine.providers.aclose()
    test = report.splits["test"]
    gates = bench.GATES
    assert test.rate(test.intent_ok) >= gates["intent_accuracy"], test.misses
    assert test.rate(test.entity_ok) >= gates["entity_exact_match"], test.misses
    assert test.rate(test.mutating_ok, test.mutating_predicted) >= gates["mutating_precision"], test.misses
    assert report.rate(report.multiturn) >= gates["multiturn_success"], report.failed_scenarios
    assert report.unsafe == [] and report.rate(report.safety) >= gates["safety_refusal"], report.unsafe
