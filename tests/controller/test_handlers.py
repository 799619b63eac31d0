"""What the controller writes to its log and its Events: requeues are not errors; Events carry the correlation ID."""

from __future__ import annotations

import logging

from controller.operator.handlers import REQUEUED, RequeueNoise, with_correlation


def record(message: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)


def test_a_requeue_is_lowered_to_debug_and_hidden_at_info() -> None:
    logging.getLogger().setLevel(logging.INFO)
    rec = record(f"Handler 'reconcile' failed temporarily: {REQUEUED}")
    assert RequeueNoise().filter(rec) is False
    assert rec.levelname == "DEBUG"


def test_a_requeue_is_shown_at_debug() -> None:
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        assert RequeueNoise().filter(record(f"failed temporarily: {REQUEUED}")) is True
    finally:
        root.setLevel(previous)


def test_real_failures_stay_errors() -> None:
    rec = record("Handler 'reconcile' failed temporarily: connection refused")
    assert RequeueNoise().filter(rec) is True
    assert rec.levelno == logging.ERROR


def test_events_name_the_correlation_id_once() -> None:
    assert with_correlation("Deployed ring 0", "c-1") == "Deployed ring 0 [correlation c-1]"
    assert with_correlation("Deployed ring 0 [correlation c-1]", "c-1") == "Deployed ring 0 [correlation c-1]"
    assert with_correlation("Deployed ring 0", "") == "Deployed ring 0"
