"""Step claims: exactly one claimer wins, the first outcome sticks, and released claims can be retaken."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import pytest

from controller.storage import claims
from controller.storage.db import Pool, open_pool


async def test_only_the_first_claimer_wins(db_pool: Pool) -> None:
    assert await claims.claim(db_pool, "task/Deploy/1", "c-1", "worker-a") is True
    assert await claims.claim(db_pool, "task/Deploy/1", "c-1", "worker-b") is False
    held = await claims.get(db_pool, "task/Deploy/1")
    assert held is not None
    assert (held.owner, held.correlation_id, held.finished, held.outcome) == ("worker-a", "c-1", False, None)


async def test_concurrent_claimers_on_separate_connections_yield_one_winner(db_pool: Pool, database_url: str) -> None:
    other = await open_pool(database_url, min_size=4, max_size=4, name="other")
    try:
        for round_ in range(5):
            key = f"task/Monitor/{round_}"
            results = await asyncio.gather(
                *(claims.claim(pool, key, "c-1", f"worker-{n}") for n, pool in enumerate([db_pool, other] * 4))
            )
            assert results.count(True) == 1, results
            winner = await claims.get(db_pool, key)
            assert winner is not None
            assert winner.owner == f"worker-{results.index(True)}"
    finally:
        await other.close()


async def test_the_first_outcome_sticks(db_pool: Pool) -> None:
    await claims.claim(db_pool, "k", "c-1", "worker-a")
    assert await claims.finish(db_pool, "k", {"state": "Succeeded", "updated": 3}) is True
    assert await claims.finish(db_pool, "k", {"state": "Failed"}) is False
    done = await claims.get(db_pool, "k")
    assert done is not None
    assert done.finished
    assert done.outcome == {"state": "Succeeded", "updated": 3}
    assert done.finished_at is not None
    assert done.finished_at >= done.claimed_at


async def test_finishing_an_unclaimed_step_is_an_error(db_pool: Pool) -> None:
    with pytest.raises(claims.ClaimNotFoundError, match="'nobody' was never claimed"):
        await claims.finish(db_pool, "nobody", {})
    assert await claims.get(db_pool, "nobody") is None


async def test_a_released_claim_can_be_taken_again(db_pool: Pool) -> None:
    await claims.claim(db_pool, "k", "c-1", "worker-a")
    assert await claims.release(db_pool, "k", "worker-b") is False  # not the owner
    assert await claims.release(db_pool, "k", "worker-a") is True
    assert await claims.claim(db_pool, "k", "c-1", "worker-b") is True
    await claims.finish(db_pool, "k", {"ok": True})
    assert await claims.release(db_pool, "k", "worker-b") is False  # finished claims stay


def test_only_a_process_of_this_host_that_no_longer_runs_is_a_gone_owner() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    assert claims.owner_gone(f"worker-{host}-{gone.pid}")
    assert claims.owner_gone(f"plane-{host}-{gone.pid}")
    assert not claims.owner_gone(claims.process_owner("worker"))  # this process
    assert not claims.owner_gone(f"worker-{host}-{os.getppid()}")  # runs
    assert not claims.owner_gone(f"worker-elsewhere-{gone.pid}")  # another host: not known
    assert not claims.owner_gone(f"{host}-{gone.pid}")  # no role: not one of ours
    assert not claims.owner_gone("plane-something")
    assert not claims.owner_gone("dead-worker")
