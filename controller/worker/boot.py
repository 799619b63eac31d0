"""First module a dramatiq worker process imports: builds the broker from settings.

`ringpilot worker` passes it to dramatiq before the actor modules, because an actor binds
to the global broker when its module is imported (dramatiq's rule).
"""

from __future__ import annotations

import logging

from controller.messaging.broker import RetryPolicy, build_broker
from controller.settings import WorkerSettings, load_settings

_settings = load_settings(WorkerSettings)
if not _settings.redis_url:
    raise SystemExit("RINGPILOT_REDIS_URL: required by the worker (ringpilot dev sets it for you)")
logging.getLogger(__name__).info("Building the Redis broker for the worker")
broker = build_broker(
    _settings.redis_url,
    RetryPolicy(
        max_retries=_settings.max_retries,
        min_backoff_ms=_settings.min_backoff_ms,
        max_backoff_ms=_settings.max_backoff_ms,
        time_limit_ms=_settings.time_limit_ms,
    ),
)
