"""Starting dramatiq for `ringpilot worker`, and the broker of each worker process.

`ringpilot worker` loads the settings and calls `run(settings)`, which hands dramatiq
`controller.worker.boot:setup` as its broker; dramatiq forks the worker processes and calls `setup`
in each before it imports the actor module (an actor binds to the global broker when its module is
imported). A forked process inherits the settings, so they are loaded once; a spawned one loads them.
"""

from __future__ import annotations

import logging

from dramatiq import Middleware, Worker
from dramatiq.broker import Broker

from controller.messaging.broker import RetryPolicy, build_broker
from controller.settings import SettingsError, WorkerSettings, load_settings
from controller.telemetry.metrics import mark_build
from controller.telemetry.tracing import setup_tracing
from controller.worker.resources import WorkerResources

logger = logging.getLogger(__name__)

_settings: WorkerSettings | None = None


class PollInterval(Middleware):
    """Sets how long an idle consumer waits on its queue (`RINGPILOT_POLL_INTERVAL_MS`) on the worker itself.

    dramatiq's default comes from `dramatiq_worker_timeout` read when `dramatiq.worker` is first imported,
    so an environment variable set later was silently lost; the worker builds its consumers after
    `before_worker_boot`, so setting it here always holds.
    """

    def __init__(self, milliseconds: int) -> None:
        self.milliseconds = milliseconds

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        worker.worker_timeout = self.milliseconds


def prepare(settings: WorkerSettings) -> str:
    """Keep the settings for the worker processes; returns the broker argument for dramatiq."""
    global _settings
    _settings = settings
    return f"{__name__}:setup"


def setup() -> None:
    """Build the global Redis broker with the `AsyncIO`, `WorkerResources` and `Prometheus` middleware."""
    settings = _settings if _settings is not None else load_settings(WorkerSettings)
    if not settings.redis_url:
        raise SettingsError("RINGPILOT_REDIS_URL: required by the worker (ringpilot dev sets it for you)")
    logger.info("Building the Redis broker for the worker")
    broker = build_broker(
        settings.redis_url,
        RetryPolicy(
            max_retries=settings.max_retries,
            min_backoff_ms=settings.min_backoff_ms,
            max_backoff_ms=settings.max_backoff_ms,
            time_limit_ms=settings.time_limit_ms,
        ),
    )
    broker.add_middleware(PollInterval(settings.poll_interval_ms))
    broker.add_middleware(WorkerResources(settings))
    if settings.metrics_port:
        from dramatiq.middleware.prometheus import Prometheus

        broker.add_middleware(Prometheus())  # also serves ours: both write to PROMETHEUS_MULTIPROC_DIR
    setup_tracing("ringpilot-worker")
    mark_build()


def worker_argv(settings: WorkerSettings) -> list[str]:
    """dramatiq's command line: this module's `setup` as the broker, then the one actor module."""
    return [
        "--processes",
        str(settings.processes),
        "--threads",
        str(settings.threads),
        "--skip-logging",
        prepare(settings),
        "controller.worker.actors",
    ]


def run(settings: WorkerSettings) -> int:
    """Run dramatiq's worker processes until they stop; its exit code."""
    import dramatiq.cli

    code: int | None = dramatiq.cli.main(dramatiq.cli.make_argument_parser().parse_args(worker_argv(settings)))
    return code or 0
