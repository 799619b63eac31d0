"""A reconcile that fails because a dependency is down names it in a `Waiting` condition and retries soon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import psycopg
import psycopg_pool
import pytest
import redis.exceptions

from controller.core.errors import Unavailable
from controller.core.outcome import Outcome
from controller.kube.errors import KubeError
from controller.operator import outages
from controller.operator.kopferrors import clear_outage, kopf_errors, note_outage

NOW = datetime(2026, 12, 1, 14, 3, 2, tzinfo=UTC)


def task(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "DeploymentTask",
        "metadata": {"name": "web-2", "namespace": "default", "uid": "u-1", "generation": 3},
        "status": {"conditions": list(conditions)},
    }


def wrapped(error: BaseException, cause: BaseException) -> BaseException:
    try:
        raise error from cause
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    ("error", "named"),
    [
        (psycopg.OperationalError("connection refused"), ("PostgreSQL", "PostgreSQLUnavailable")),
        (psycopg_pool.PoolTimeout("couldn't get a connection after 30 sec"), ("PostgreSQL", "PostgreSQLUnavailable")),
        (redis.exceptions.ConnectionError("Error 111 connecting"), ("Redis", "RedisUnavailable")),
        (wrapped(RuntimeError("enqueue failed"), redis.exceptions.TimeoutError("t")), ("Redis", "RedisUnavailable")),
        (KubeError("no answer", status=0, transient=True), ("the Kubernetes API", "KubernetesUnavailable")),
    ],
)
def test_the_dependency_behind_an_error_is_named(error: BaseException, named: tuple[str, str]) -> None:
    assert outages.dependency_of(error) == named


@pytest.mark.parametrize(
    "error", [KeyError("bug"), KubeError("forbidden", status=403, transient=False), psycopg.errors.UniqueViolation()]
)
def test_bugs_and_refusals_are_no_outage(error: BaseException) -> None:
    assert outages.dependency_of(error) is None


def test_retries_back_off_from_one_second_and_stay_under_ten() -> None:
    assert [outages.retry_delay_seconds(n) for n in range(7)] == [1, 2, 4, 8, 8, 8, 8]


def test_an_outage_retries_soon_instead_of_after_kopfs_sixty_seconds() -> None:
    with pytest.raises(kopf.TemporaryError) as caught, kopf_errors(retry=2):
        raise psycopg.OperationalError("server closed the connection unexpectedly")
    assert caught.value.delay == 4
    with pytest.raises(kopf.TemporaryError) as caught, kopf_errors(retry=0):
        raise Unavailable("Redis is down")
    assert caught.value.delay == 1
    with pytest.raises(KeyError), kopf_errors(retry=0):
        raise KeyError("a bug keeps Kopf's own backoff")


def test_waiting_names_the_dependency_and_keeps_when_the_outage_began() -> None:
    error = psycopg.OperationalError("connection refused\nIs the server running?")
    first = outages.waiting_condition(task(), "PostgreSQL", "PostgreSQLUnavailable", error, NOW)
    assert (first.type, first.status, first.reason) == ("Waiting", "True", "PostgreSQLUnavailable")
    assert first.message == "PostgreSQL unavailable since 2026-12-01T14:03:02Z: connection refused"
    assert first.observed_generation == 3
    earlier = first.model_dump(mode="json", by_alias=True, exclude_none=True)
    later = outages.waiting_condition(
        task(earlier), "PostgreSQL", "PostgreSQLUnavailable", error, NOW + timedelta(seconds=20)
    )
    assert later.message.startswith("PostgreSQL unavailable since 2026-12-01T14:03:02Z")
    assert later.last_transition_time == NOW
    redis_too = outages.waiting_condition(
        task(earlier), "Redis", "RedisUnavailable", error, NOW + timedelta(seconds=20)
    )
    assert redis_too.message.startswith("Redis unavailable since 2026-12-01T14:03:22Z")


def apply_fns(patch: kopf.Patch, body: dict[str, Any]) -> dict[str, Any]:
    for fn in patch.fns:
        fn(body)
    return body


def test_the_handler_sets_waiting_on_an_outage_and_clears_it_once_through() -> None:
    body = task(
        {"type": "Ready", "status": "True", "reason": "Deploying", "lastTransitionTime": "2026-12-01T14:00:00Z"}
    )
    patch = kopf.Patch()
    note_outage(kopf.Body(body), patch, redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379"))
    after = apply_fns(patch, body)
    waiting = {c["type"]: c for c in after["status"]["conditions"]}["Waiting"]
    assert waiting["status"] == "True" and waiting["message"].startswith("Redis unavailable since ")
    assert {c["type"] for c in after["status"]["conditions"]} == {"Ready", "Waiting"}

    patch = kopf.Patch()
    clear_outage(kopf.Body(after), patch)
    cleared = {c["type"]: c for c in apply_fns(patch, after)["status"]["conditions"]}["Waiting"]
    assert (cleared["status"], cleared["reason"]) == ("False", "DependenciesAvailable")
    assert cleared["message"].startswith("Redis is back since ")

    patch = kopf.Patch()
    clear_outage(kopf.Body(after), patch)  # nothing to clear any more
    assert patch.fns == []


def test_a_bug_sets_no_waiting_condition() -> None:
    patch = kopf.Patch()
    note_outage(kopf.Body(task()), patch, KeyError("bug"))
    assert patch.fns == []


def test_an_outcome_that_writes_every_condition_carries_the_cleared_one() -> None:
    waiting = outages.waiting_condition(task(), "Redis", "RedisUnavailable", RuntimeError("down"), NOW)
    held = waiting.model_dump(mode="json", by_alias=True, exclude_none=True)
    body = task(held)
    ready = {"type": "Ready", "status": "Unknown", "reason": "Monitoring", "lastTransitionTime": "2026-12-01T14:00:00Z"}
    outcome = Outcome(status={"phase": "Monitoring", "conditions": [held, ready]})
    patch = kopf.Patch()
    written = clear_outage(kopf.Body(body), patch, outcome)
    assert written is not None and patch.fns == []
    by_type = {c["type"]: c for c in written.status["conditions"]}
    assert by_type["Waiting"]["status"] == "False" and by_type["Ready"] == ready
    assert written.status["phase"] == "Monitoring"
