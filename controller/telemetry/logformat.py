"""Log lines: plain for terminals, JSON lines (`RINGPILOT_LOG_FORMAT=json`) in the cluster.

`configure_logging` installs one root handler (`build_handler`) with `CorrelationFilter`, which stamps
each record with the correlation ID and trace id in scope (set by the reconcile, step and turn scopes).
Both formatters mask secrets in the message and the traceback; JSON lines come from python-json-logger,
with the traceback as the `exc_info` field. Extra attributes that are not plain data (Kopf attaches its
settings to each record) are written as their type's name, so every line parses. In JSON mode an
uncaught exception is logged too, instead of Python printing a bare traceback. SDK loggers that would
print requests stay at INFO or above.
"""

from __future__ import annotations

import logging
import sys
import threading
from datetime import date, datetime
from types import TracebackType
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from controller.telemetry import tracing
from controller.telemetry.redaction import redact

PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s %(trace_id)s"
#: Libraries whose DEBUG lines include request bodies (prompts) or headers (keys).
CHATTY_LOGGERS = ("anthropic", "openai", "httpx", "httpcore", "urllib3", "kubernetes.client.rest")


class CorrelationFilter(logging.Filter):
    """Adds `correlation_id` and `trace_id` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", ""):
            record.correlation_id = tracing.current_correlation()
        if not getattr(record, "trace_id", ""):
            record.trace_id = tracing.current_trace_id() or ""
        return True


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def plain_data(value: Any) -> Any:
    """What a value that `json` cannot write becomes in a JSON line: a date's ISO form, else its type's name."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return f"<{type(value).__name__}>"


#: Attributes Kopf adds to its records that are no data for a reader (its whole settings object).
DROPPED_EXTRAS = ("settings",)


class JsonLineFormatter(JsonFormatter):
    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        for name in DROPPED_EXTRAS:
            log_record.pop(name, None)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return redact(super().formatMessage(record))

    def formatException(self, ei: object) -> str:
        return redact(super().formatException(ei))  # type: ignore[arg-type]

    def formatStack(self, stack_info: str) -> str:
        return redact(str(super().formatStack(stack_info)))

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def json_formatter() -> logging.Formatter:
    return JsonLineFormatter(
        JSON_FIELDS,
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        json_default=plain_data,
    )


def build_handler(fmt: str = "plain", stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler (stderr by default) in format `fmt`, with the correlation filter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else PlainFormatter(PLAIN_FORMAT))
    handler.addFilter(CorrelationFilter())
    return handler


def quiet_chatty_loggers(level: str) -> None:
    """Keep SDK loggers that print requests at INFO or above, whatever `level` the process runs at."""
    floor = max(logging.getLevelNamesMapping()[level], logging.INFO)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(floor)


def configure_logging(level: str = "INFO", fmt: str = "plain") -> logging.Handler:
    """One stderr handler on the root logger instead of any there; returns it."""
    handler = build_handler(fmt)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_chatty_loggers(level)
    if fmt == "json":
        log_uncaught_exceptions()
    return handler


def _log_uncaught(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("ringpilot").critical("Uncaught %s", kind.__name__, exc_info=(kind, error, tb))


def log_uncaught_exceptions() -> None:
    """Route uncaught exceptions (main thread and others) through logging, so they are JSON lines too."""
    sys.excepthook = _log_uncaught

    def in_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)

    threading.excepthook = in_thread
