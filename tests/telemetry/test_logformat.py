"""Log lines: JSON with the correlation and trace ids in scope, tracebacks as a field, secrets masked."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from controller.telemetry.logformat import build_handler, quiet_chatty_loggers
from controller.telemetry.tracing import span

KEY = "sk-ant-api03-PLANTEDsecret0123456789abcdef"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    # On the tests' own logger, not the root: a thread an earlier test left (a watch, a pool) may still log,
    # and its line would land between the ones a test counts.
    stream = io.StringIO()
    handler = build_handler("json", stream)
    log = logging.getLogger("ringpilot.test")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_line_in_a_span_carries_the_correlation_and_trace_ids(
    json_lines: io.StringIO, spans: InMemorySpanExporter
) -> None:
    log = logging.getLogger("ringpilot.test")
    with span("reconcile Probe", "corr-42"):
        log.info("Reconciled %s", "p1")
    log.info("Outside")
    inside, outside = lines(json_lines)[-2:]
    [finished] = spans.get_finished_spans()
    assert inside["message"] == "Reconciled p1" and inside["level"] == "INFO" and inside["logger"] == "ringpilot.test"
    assert inside["correlation_id"] == "corr-42"
    assert inside["trace_id"] == format(finished.context.trace_id, "032x")
    assert (outside["correlation_id"], outside["trace_id"]) == ("", "")


def test_a_traceback_is_a_field_and_a_key_is_masked_in_message_and_traceback(json_lines: io.StringIO) -> None:
    log = logging.getLogger("ringpilot.test")
    try:
        raise RuntimeError(f"the provider refused {KEY}")
    except RuntimeError:
        log.exception("Call failed with Bearer %s", KEY)
    [line] = lines(json_lines)[-1:]
    assert line["message"] == "Call failed with [redacted]"
    assert "RuntimeError: the provider refused [redacted]" in str(line["exc_info"])
    assert KEY not in json_lines.getvalue()


def test_sdk_loggers_that_print_requests_stay_quiet_at_debug() -> None:
    quiet_chatty_loggers("DEBUG")
    assert not logging.getLogger("anthropic").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("httpx").isEnabledFor(logging.DEBUG)


def test_a_record_carrying_objects_json_cannot_write_is_still_one_json_line(json_lines: io.StringIO) -> None:
    async def agen() -> AsyncIterator[int]:
        yield 1

    @dataclass
    class Settings:  # as Kopf attaches its OperatorSettings, which holds async generators
        stream: object

    extra = {"settings": Settings(agen()), "k8s_ref": {"name": "web"}, "lock": threading.Lock(), "at": date(2026, 1, 2)}
    logging.getLogger("ringpilot.test.kopf-like").info("Handler 'reconcile' succeeded.", extra=extra)
    raw = json_lines.getvalue().splitlines()
    assert len(raw) == 1
    [line] = lines(json_lines)
    assert line["message"] == "Handler 'reconcile' succeeded."
    assert line["k8s_ref"] == {"name": "web"} and line["at"] == "2026-01-02" and line["lock"] == "<lock>"
    assert "settings" not in line


def test_an_uncaught_exception_of_a_json_process_is_a_json_line() -> None:
    script = (
        "from controller.telemetry.logformat import configure_logging\n"
        "configure_logging('INFO', 'json')\n"
        "raise RuntimeError('boom at start')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert [r["message"] for r in records] == ["Uncaught RuntimeError"]
    assert "RuntimeError: boom at start" in str(records[0]["exc_info"])
