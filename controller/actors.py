"""The controller's dramatiq actors: the only module of `controller` with @dramatiq.actor.

Imported by `ringpilot worker` after `controller.broker.build_broker` has set the broker.
Actors receive ids, never objects, and claim their idempotency key in PostgreSQL before
any effect, because a message may be delivered twice.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)
