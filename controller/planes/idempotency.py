"""Idempotency keys for plane calls: run a mutating call once per key, replay its recorded result after.

Both planes wrap every mutating call in `KeyedRunner.run`, which claims a step in `step_claims`
(controller/storage/claims.py) under a plane-scoped key, performs the action, and stores its
`ActionResult`; a later call with the same key acts no more and gets the stored result back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from controller.planes.base import ActionResult, PlaneError, TargetRef
from controller.storage import claims
from controller.storage.db import Pool

logger = logging.getLogger(__name__)

#: An unfinished claim older than this is taken to belong to a worker that died mid-call.
DEFAULT_STALE_CLAIM_SECONDS = 120.0


def default_owner() -> str:
    """Who claims plane steps from this process: `plane-<host>-<pid>`."""
    return claims.process_owner("plane")


def correlation_of(key: str) -> str:
    """The correlation ID an idempotency key starts with (`<correlation id>/<step>…`), else the key."""
    head = key.split("/", 1)[0]
    return head or key


def claim_key(plane: str, operation: str, subject: str, key: str) -> str:
    """The `step_claims` key of one plane call; the plane, operation and target keep callers' keys apart."""
    return f"plane/{plane}/{operation}/{subject}/{key}"


def result_outcome(result: ActionResult) -> dict[str, Any]:
    """What `step_claims.outcome` stores for an `ActionResult`."""
    return {"changed": result.changed, "detail": result.detail, "previous_version": result.previous_version}


def replayed_result(target: TargetRef, outcome: dict[str, Any]) -> ActionResult:
    """The stored result of an earlier call with the same key, marked as replayed."""
    return ActionResult(
        target=target,
        changed=bool(outcome.get("changed")),
        detail=str(outcome.get("detail", "")),
        previous_version=outcome.get("previous_version"),
        replayed=True,
    )


class KeyedRunner:
    """Claims, runs and records plane calls by idempotency key."""

    def __init__(
        self,
        pool: Pool,
        *,
        owner: str | None = None,
        stale_claim_seconds: float = DEFAULT_STALE_CLAIM_SECONDS,
    ) -> None:
        self.pool = pool
        self.owner = owner or default_owner()
        self.stale_claim_seconds = stale_claim_seconds

    async def run(
        self, step_key: str, correlation_id: str, action: Callable[[], Awaitable[dict[str, Any]]]
    ) -> tuple[dict[str, Any], bool]:
        """Run `action` once for `step_key`; return its outcome and whether it was replayed.

        A failed action gives the claim back (so a retry with the same key acts) and re-raises.
        A claim another worker holds and has not finished raises a transient `PlaneError`, unless it
        is older than `stale_claim_seconds` or its owner is a process of this host that no longer runs
        (`claims.owner_gone`), in which case it is taken over.
        """
        try:
            for _ in range(3):
                if await claims.claim(self.pool, step_key, correlation_id, self.owner):
                    return await self._act(step_key, action), False
                existing = await claims.get(self.pool, step_key)
                if existing is None:  # released between our claim and our read: try again
                    continue
                if existing.finished:
                    return dict(existing.outcome or {}), True
                age_seconds = (datetime.now(UTC) - existing.claimed_at).total_seconds()
                if age_seconds < self.stale_claim_seconds and not claims.owner_gone(existing.owner):
                    raise PlaneError(f"Step {step_key!r} is in progress elsewhere ({existing.owner})", transient=True)
                logger.warning(
                    "Took over plane step %r from %r (stale or gone) after %.0fs", step_key, existing.owner, age_seconds
                )
                await claims.release(self.pool, step_key, existing.owner)
        except psycopg.OperationalError as error:
            raise PlaneError(f"PostgreSQL is unavailable: {error}", transient=True) from error
        raise PlaneError(f"Could not claim step {step_key!r}", transient=True)

    async def _act(self, step_key: str, action: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        try:
            outcome = await action()
        except BaseException:
            await claims.release(self.pool, step_key, self.owner)
            raise
        await claims.finish(self.pool, step_key, outcome)
        return outcome

    async def run_action(
        self,
        plane: str,
        operation: str,
        target: TargetRef,
        key: str,
        action: Callable[[], Awaitable[ActionResult]],
    ) -> ActionResult:
        """`run` for a per-target call that returns an `ActionResult`."""

        async def recorded() -> dict[str, Any]:
            return result_outcome(await action())

        outcome, replayed = await self.run(claim_key(plane, operation, target.key, key), correlation_of(key), recorded)
        if replayed:
            return replayed_result(target, outcome)
        return ActionResult(
            target=target,
            changed=bool(outcome["changed"]),
            detail=str(outcome["detail"]),
            previous_version=outcome["previous_version"],
        )
