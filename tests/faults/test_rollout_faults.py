"""Fault suite: a rollout survives `kill -9` of the worker or the controller at each of its steps, and a
30 s outage of PostgreSQL or Redis, with every step run once, no message lost, and progress resumed
within 10 s of the dependency's return (a `Waiting` condition names the dependency meanwhile)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
import redis

from tests.faults.rollouts import (
    NS,
    apply_task,
    assert_ran_once,
    new_app,
    running_steps,
    status_of,
    wait_condition,
    wait_final,
)
from tests.fixtures.services import ServiceUrls
from tests.fixtures.stack import Stack, redis_db, wait_for

pytestmark = pytest.mark.e2e
OUTAGE_SECONDS = 30
RESUME_SECONDS = 10


@pytest.fixture(scope="module")
def ns(stack: Stack) -> str:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    stack.kubectl("apply", "-f", "-", stdin=json.dumps(namespace))
    return NS


@pytest.mark.parametrize("process", ["worker", "controller"])
def test_kill_9_at_each_step_of_a_rollout_still_runs_every_step_once(stack: Stack, ns: str, process: str) -> None:
    app = new_app(stack)
    name = f"killed-{process}"
    stop: Callable[[signal.Signals], None] = getattr(stack, f"stop_{process}")
    start: Callable[[], None] = getattr(stack, f"start_{process}")
    killed_at: list[tuple[str, int | None]] = []
    # A Deploy finishes in milliseconds: hold each one inside the worker (it patches the ring's workloads,
    # then waits to write its rollout history) so the kill lands mid-step, then let it go as soon as the
    # process is dead, before it starts again: held through a restart that is slow under load, the step
    # would outlast its lease and be replaced while it still runs. Monitor steps last their 3 s soak.
    holder = psycopg.connect(stack.database_url)
    holder.execute("LOCK TABLE rollout_history IN SHARE MODE")
    try:
        apply_task(stack, name, app)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            status = status_of(stack, name)
            if status.get("phase") in ("Succeeded", "Failed", "RolledBack"):
                break
            for step in running_steps(status):
                if step not in killed_at:
                    killed_at.append(step)
                    stop(signal.SIGKILL)
                    if step[0] == "Deploy":
                        holder.rollback()  # the kill landed while it was held: let it (or its replacement) finish
                    elif step[0] == "Monitor":
                        holder.execute("LOCK TABLE rollout_history IN SHARE MODE")  # hold the next ring's Deploy
                    start()
            time.sleep(0.05)
    finally:
        holder.rollback()
        holder.close()
    wait_final(stack, name)
    assert {("Deploy", 0), ("Monitor", 0), ("Deploy", 1), ("Monitor", 1)} <= set(killed_at), killed_at
    assert_ran_once(stack, name, app)


@pytest.fixture
def stores(stack: Stack, service_urls: ServiceUrls) -> Iterator[ServiceUrls]:
    """The session's embedded PostgreSQL and Redis, running again after the test whatever happened."""
    assert service_urls.embedded is not None, "the outage tests stop the embedded servers"
    yield service_urls
    for server in service_urls.embedded.servers:
        if server.process is None or server.exited() is not None:
            server.restart(60)


def stop_store(urls: ServiceUrls, which: str) -> None:
    assert urls.embedded is not None
    if which == "postgres":
        urls.embedded.postgres.stop()
        return
    client = redis.Redis.from_url(redis_db(urls.redis_url, 0))
    client.shutdown(save=True)  # saved: a restart keeps every queued message, as a persistent Redis does
    assert urls.embedded.redis.process is not None
    urls.embedded.redis.process.wait(30)


@pytest.mark.parametrize(("which", "named"), [("postgres", "PostgreSQL"), ("redis", "Redis")])
def test_a_30_second_outage_during_a_rollout_is_waited_out_visibly_and_resumed_quickly(
    stack: Stack, ns: str, stores: ServiceUrls, which: str, named: str
) -> None:
    app = new_app(stack)
    name = f"outage-{which}"
    apply_task(stack, name, app, soakSeconds=5)

    def monitoring_ring_0() -> bool:
        status = status_of(stack, name)
        return status.get("phase") == "Monitoring" and status.get("currentRing") == 0

    wait_for(monitoring_ring_0, 90, 0.1, "Monitor of ring 0")
    stop_store(stores, which)
    down_at = time.monotonic()
    waiting = wait_condition(stack, name, "Waiting", "True", OUTAGE_SECONDS)
    assert waiting["reason"] == f"{named}Unavailable"
    assert waiting["message"].startswith(f"{named} unavailable since "), waiting
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
    server = stores.embedded.postgres if which == "postgres" else stores.embedded.redis  # type: ignore[union-attr]
    server.restart(60)
    back_at = time.monotonic()
    cleared = wait_condition(stack, name, "Waiting", "False", RESUME_SECONDS + 20)
    resumed_seconds = time.monotonic() - back_at
    assert resumed_seconds <= RESUME_SECONDS, f"resumed {resumed_seconds:.1f}s after {named} came back: {cleared}"
    wait_final(stack, name)
    assert_ran_once(stack, name, app)
