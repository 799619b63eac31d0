"""Masking secrets that slipped into text bound for a log line or a span.

API keys (Anthropic `sk-ant-…`, OpenAI-style `sk-…`, Slack `xox?-…`) and bearer tokens become
`[redacted]`. Used by the log formatters and wherever an exception is recorded on a span.
"""

from __future__ import annotations

import re

from opentelemetry.trace import Span, Status, StatusCode

SECRET_PATTERN = re.compile(
    r"(sk-(?:ant-)?[A-Za-z0-9_\-]{8,})|((?i:bearer)\s+[A-Za-z0-9._~+/\-]{8,}=*)|(xox[abpr]-[A-Za-z0-9\-]{8,})"
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return SECRET_PATTERN.sub(REDACTED, text)


def record_error(span: Span, error: BaseException) -> None:
    """Mark `span` failed with `error`'s type and its redacted message (no traceback: that goes to the log)."""
    span.add_event("exception", {"exception.type": type(error).__name__, "exception.message": redact(str(error))})
    span.set_status(Status(StatusCode.ERROR, type(error).__name__))
