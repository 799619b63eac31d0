"""Log lines: JSON with the correlation and trace ids in scope, tracebacks as a field, secrets masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from controller.telemetry.logformat import build_handler, quiet_chatty_loggers
from controller.telemetry.tracing import span

KEY = "sk-ant-api03-PLANTEDsecret0123456789abcdef"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = build_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


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
