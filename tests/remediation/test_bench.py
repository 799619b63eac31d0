"""bench/drift.py runs, and its steady-state cycle makes API calls per namespace, not per Assignment."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_drift_benchmark_counts_calls_per_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    drift: Any = importlib.import_module("drift")
    try:
        report = drift.run(["--assignments", "60", "--namespaces", "4", "--workers", "4"])
    finally:
        sys.modules.pop("drift", None)
    calls = {key: row.api_calls for key, row in report.rows.items()}
    assert calls["first"] == 1 + 2 * 4 + 60
    assert calls["steady"] == 1 + 2 * 4
    assert calls["tenth"] == 1 + 2 * 4
    assert calls["few_namespaces"] == 1 + 2 * 1
    assert report.rows["first"].cycle.checked == 60
    assert report.rows["steady"].cycle.written == 0
    assert report.entries == 60
