"""An idle controller is quiet at INFO: Kopf's per-object routine lines are lowered to DEBUG."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from controller.operator.handlers import RequeueNoise


def kopf_record(message: str, level: int = logging.INFO, name: str = "kopf.objects") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


@pytest.fixture
def at_info() -> Iterator[None]:
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.INFO)
    yield
    root.setLevel(previous)


@pytest.mark.parametrize(
    "message", ["Timer 'resync-deploymenttasks' succeeded.", "Webhook 'stamp-requests' succeeded."]
)
def test_a_resync_or_an_admission_that_succeeded_is_hidden_at_info(at_info: None, message: str) -> None:
    record = kopf_record(message)
    assert RequeueNoise().filter(record) is False
    assert record.levelname == "DEBUG"


@pytest.mark.parametrize(
    ("message", "level", "name"),
    [
        ("Timer 'resync-deploymenttasks' failed with an exception. Will retry.", logging.ERROR, "kopf.objects"),
        ("Creation is processed: 1 succeeded; 0 failed.", logging.INFO, "kopf.objects"),
        ("Timer 'x' succeeded.", logging.INFO, "controller.reconcile"),
    ],
)
def test_failures_news_and_our_own_lines_stay(at_info: None, message: str, level: int, name: str) -> None:
    record = kopf_record(message, level, name)
    assert RequeueNoise().filter(record) is True
    assert record.levelno == level
