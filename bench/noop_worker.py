"""Worker module for the dramatiq baseline: the broker from RINGPILOT_REDIS_URL and one no-op actor."""

from __future__ import annotations

import os

import dramatiq

from controller.messaging.broker import build_broker

broker = build_broker(os.environ["RINGPILOT_REDIS_URL"])


@dramatiq.actor(actor_name="bench.noop", queue_name="bench")
def noop() -> None:
    """Do nothing: the cost measured is the broker's and the worker's own."""
