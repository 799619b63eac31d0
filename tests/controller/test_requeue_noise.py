"""A reconcile's requeue is not reported as an error in the controller's log."""

from __future__ import annotations

import logging

from controller.handlers import REQUEUED, RequeueNoise


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
