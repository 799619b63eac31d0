"""The loop of a DeploymentTask in flight (controller/operator/driving.py) against the API emulator.

A round reads the task as the API holds it, runs the reconcile and writes its Outcome: Events before the
status, so a crash between them re-posts rather than loses them. The loop sleeps until the Outcome's
requeue unless woken, and exits when Kopf's stop flag is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from kubernetes import client

from controller.api.kinds import DEPLOYMENT_TASK
from controller.api.meta import utcnow
from controller.core import conditions
from controller.core.outcome import AuditNote, EventNote, Outcome
from controller.kube.client import CustomObjects
from controller.kube.errors import KubeError
from controller.operator.driving import ApiWriter, TaskDriver, listen_for_reports
from controller.reconcile.inflight import wants_wake
from controller.storage import claims
from controller.storage.db import Pool

GROUP, VERSION, NAMESPACE = "ringpilot.dev", "v1alpha1", "default"


class Notes:
    """Audit rows and Events of a round, in the order they were written (with the status writes)."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def audit(self, note: AuditNote) -> None:
        self.log.append(f"audit {note.action}")

    async def write(self, status: dict[str, Any], labels: dict[str, str], owned: Any = ()) -> bool:
        raise AssertionError("the notes writer never writes status")

    async def event(self, note: EventNote) -> None:
        self.log.append(f"event {note.reason}")


def make_task(cluster: Any, name: str) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DeploymentTask",
        "metadata": {"name": name},
        "spec": {"app": "web", "version": "1.0.0", "maxRing": 0},
    }
    created: dict[str, Any] = client.CustomObjectsApi(cluster).create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "deploymenttasks", body
    )
    return created


def read(cluster: Any, name: str) -> dict[str, Any]:
    got: dict[str, Any] = client.CustomObjectsApi(cluster).get_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "deploymenttasks", name
    )
    return got


class Recorder:
    """A reconcile that records each body it was given and answers with `outcome`."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.bodies: list[dict[str, Any]] = []
        self.called = asyncio.Event()

    async def __call__(self, body: dict[str, Any]) -> Outcome:
        self.bodies.append(body)
        self.called.set()
        return self.outcome


def driver(cluster: Any, reconcile: Recorder, log: list[str]) -> TaskDriver:
    locks: dict[str, asyncio.Lock] = {}
    return TaskDriver(
        DEPLOYMENT_TASK,
        CustomObjects(cluster),
        reconcile,
        lambda body, correlation_id: Notes(log),
        lambda uid: locks.setdefault(uid, asyncio.Lock()),
    )


async def test_a_round_writes_audit_rows_and_events_before_the_status_it_read_fresh(cluster: Any) -> None:
    created = make_task(cluster, "round")
    outcome = Outcome(
        status={"phase": "Validating"},
        labels={"ringpilot.dev/app": "web"},
        events=(EventNote("Accepted", "accepted"),),
        audits=(AuditNote("Accepted", "system:ringpilot"),),
        requeue_after_seconds=4.0,
    )
    log: list[str] = []
    recorder = Recorder(outcome)
    wait, retries = await driver(cluster, recorder, log).round(NAMESPACE, "round", created["metadata"]["uid"], 0)
    assert (wait, retries) == (4.0, 0)
    assert log == ["audit Accepted", "event Accepted"]
    task = read(cluster, "round")
    assert task["status"]["phase"] == "Validating"
    assert task["metadata"]["labels"]["ringpilot.dev/app"] == "web"
    assert recorder.bodies[0]["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_a_sleeping_loop_runs_again_when_woken_and_exits_when_stopped(cluster: Any) -> None:
    created = make_task(cluster, "woken")
    uid = created["metadata"]["uid"]
    recorder = Recorder(Outcome(status={}, requeue_after_seconds=600.0))
    loop_driver = driver(cluster, recorder, [])
    stop = asyncio.Event()
    running = asyncio.create_task(loop_driver.drive(NAMESPACE, "woken", uid, stop.wait()))
    await asyncio.wait_for(recorder.called.wait(), 10)
    assert len(recorder.bodies) == 1  # then asleep for the 600 s requeue
    client.CustomObjectsApi(cluster).patch_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "deploymenttasks", "woken", {"metadata": {"annotations": {"seen": "twice"}}}
    )
    recorder.called.clear()
    assert loop_driver.wake_named(NAMESPACE, "woken")  # as a ChangeRequest's judged decision does
    await asyncio.wait_for(recorder.called.wait(), 10)
    assert recorder.bodies[-1]["metadata"]["annotations"]["seen"] == "twice"  # the second round read it again
    stop.set()
    await asyncio.wait_for(running, 10)
    assert not loop_driver.wake(uid) and not loop_driver.wake_named(NAMESPACE, "woken")  # no loop any more


async def test_a_step_report_announced_through_postgres_wakes_the_tasks_loop_at_once(
    cluster: Any, database_url: str, db_pool: Pool
) -> None:
    created = make_task(cluster, "announced")
    uid = created["metadata"]["uid"]
    recorder = Recorder(Outcome(status={}, requeue_after_seconds=600.0))
    loop_driver = driver(cluster, recorder, [])
    stop = asyncio.Event()
    running = asyncio.create_task(loop_driver.drive(NAMESPACE, "announced", uid, stop.wait()))
    await asyncio.wait_for(recorder.called.wait(), 10)
    recorder.called.clear()
    async with listen_for_reports(database_url, loop_driver, db_pool):  # revives the pool as it connects
        # Once LISTEN is in place every loop is woken (announcements may have been missed before it).
        await asyncio.wait_for(recorder.called.wait(), 10)
        assert len(recorder.bodies) == 2
        recorder.called.clear()
        await claims.announce(db_pool, "some-other-task")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder.called.wait(), 0.5)
        assert not recorder.called.is_set(), "another task's announcement woke this loop"
        await claims.announce(db_pool, uid)  # as the worker does once the step's report is stored
        await asyncio.wait_for(recorder.called.wait(), 10)  # not the 600 s requeue
    assert len(recorder.bodies) == 3
    stop.set()
    await asyncio.wait_for(running, 10)


async def test_an_outage_is_named_on_the_task_and_retried_soon(cluster: Any) -> None:
    import psycopg

    created = make_task(cluster, "outage")

    async def down(body: dict[str, Any]) -> Outcome:
        raise psycopg.OperationalError("connection refused")

    loop_driver = driver(cluster, Recorder(Outcome(status={})), [])
    loop_driver.reconcile = down
    wait, retries = await loop_driver.round(NAMESPACE, "outage", created["metadata"]["uid"], 2)
    assert (wait, retries) == (4.0, 3)  # 1, 2, 4 … seconds
    waiting = conditions.find(conditions.current_conditions(read(cluster, "outage")), "Waiting")
    assert waiting is not None and waiting.reason == "PostgreSQLUnavailable"
    assert waiting.message.startswith("PostgreSQL unavailable since ")

    loop_driver.reconcile = Recorder(Outcome(status={}))
    await loop_driver.round(NAMESPACE, "outage", created["metadata"]["uid"], 3)
    back = conditions.find(conditions.current_conditions(read(cluster, "outage")), "Waiting")
    assert back is not None and back.status == "False" and back.reason == "DependenciesAvailable"


async def test_a_writer_for_a_task_that_is_gone_says_so(cluster: Any) -> None:
    body = {"metadata": {"name": "never-created", "namespace": NAMESPACE}}
    writer = ApiWriter(CustomObjects(cluster), DEPLOYMENT_TASK, body, Notes([]))
    await writer.write({"phase": "Validating"}, {})
    assert await writer.flush() is False
    with pytest.raises(KubeError):
        await CustomObjects(cluster).get_raw(DEPLOYMENT_TASK, NAMESPACE, "never-created")


@pytest.mark.parametrize(
    ("metadata", "status", "woken"),
    [
        ({"generation": 2}, {"observedGeneration": 1}, True),  # a spec change not yet seen
        ({"generation": 1}, {"observedGeneration": 1}, False),  # our own status write
        ({"generation": 2, "deletionTimestamp": utcnow().isoformat()}, {"observedGeneration": 1}, False),
    ],
)
def test_the_watch_wakes_a_task_for_a_spec_change_it_has_not_seen(
    metadata: dict[str, Any], status: dict[str, Any], woken: bool
) -> None:
    assert wants_wake({"metadata": metadata, "status": status}) is woken
