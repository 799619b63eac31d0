"""A child's output, line by line, into a log file that is rotated by size.

The child writes to a pipe; a daemon thread reads it and hands each line to the standard library's
`RotatingFileHandler`, which keeps `backups` old files (`name.log.1` …) of at most `max_bytes` each.
A child that writes its own log file could not be rotated under it; a pipe can.
"""

from __future__ import annotations

import logging
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO

DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_LOG_BACKUPS = 3


class RotatingLog:
    """One child's log file, written from its pipe by `pump`; `close` waits for the pipe to drain."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_LOG_MAX_BYTES, backups: int = DEFAULT_LOG_BACKUPS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        self.thread: threading.Thread | None = None

    def write_line(self, line: str) -> None:
        self.handler.handle(logging.makeLogRecord({"msg": line, "levelno": logging.INFO, "levelname": "INFO"}))

    def pump(self, stream: IO[bytes], name: str) -> None:
        """Copy `stream` into the log from a daemon thread until it ends (the child exited)."""

        def copy() -> None:
            with stream:
                for raw in iter(stream.readline, b""):
                    self.write_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))

        self.thread = threading.Thread(target=copy, name=f"log-{name}", daemon=True)
        self.thread.start()

    def close(self, timeout_seconds: float = 5.0) -> None:
        if self.thread is not None:
            self.thread.join(timeout_seconds)
        self.handler.close()
