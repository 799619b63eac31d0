"""Shared runtime objects of the controller process, built at startup and kept in Kopf's memo.

Handlers receive them through `memo.deps`; nothing here is a module global.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from controller.api.policy import Policy
from controller.messaging.dispatching import Dispatcher
from controller.settings import ControllerSettings


@dataclass
class Deps:
    settings: ControllerSettings
    policy: Policy
    pool: Any = None  # psycopg_pool.AsyncConnectionPool once opened
    dispatcher: Dispatcher | None = None
    redis: Any = None  # redis.asyncio.Redis once connected
    remediation: Any = None  # controller.operator.startup.RemediationRuntime once started
    orchestration: Any = None  # controller.operator.startup.OrchestrationRuntime once started
    locks: defaultdict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))

    def lock_for(self, uid: str) -> asyncio.Lock:
        """One lock per object, so a timer and an update never reconcile it at once."""
        return self.locks[uid]
