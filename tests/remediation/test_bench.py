"""bench/drift.py runs, and its steady-state cycle makes API calls per namespace, not per Assignment."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_drift_benchmark_counts_calls_per_namespace(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    drift: Any = importlib.import_module("drift")
    try:
        assert drift.main(["--assignments", "60", "--namespaces", "4", "--workers", "4"]) == 0
    finally:
        sys.modules.pop("drift", None)
    out = capsys.readouterr().out
    calls = {
        m["label"].strip(): int(m["calls"])
        for m in re.finditer(r"^(?P<label>[^\n]+?)\s+[\d.]+ s wall.*?API calls\s+(?P<calls>\d+)", out, re.MULTILINE)
    }
    assert calls["cycle 1: first check, writes every status"] == 1 + 2 * 4 + 60
    assert calls["cycle 2: steady state, every Assignment due"] == 1 + 2 * 4
    assert calls["steady, a tenth of the Assignments, 4 namespaces"] == 1 + 2 * 4
    assert calls["steady, the Assignments of 1 namespaces"] == 1 + 2 * 1
