"""The queries behind `GET /api/v1/tasks` and `GET /api/v1/traces/{id}`, on the emulator and real PostgreSQL.

A trace must hold everything the correlation ID touched (audit rows with their trace ids, chat turns,
tool calls, step claims, rollouts, labelled objects, a task's steps, Events), in time order, nothing
of another correlation ID, and another user's chat text never.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client
from psycopg.types.json import Jsonb

from agent.gateway.tasklisting import list_tasks, summarize
from agent.gateway.tracefinding import find_trace
from agent.gateway.tracerows import HIDDEN, Viewer, database_entries
from controller.api.group import GROUP, VERSION
from controller.api.labels import CORRELATION_LABEL
from controller.devkit.seeding import apply_crds
from controller.kube.client import CustomObjects
from controller.kube.coreapps import CoreApps
from controller.storage.audit import AuditEvent, record_audit
from controller.storage.db import Pool
from tests.fixtures.kube import api_client

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stamp(seconds: float) -> str:
    return at(seconds).isoformat().replace("+00:00", "Z")


def make_task(custom: client.CustomObjectsApi, name: str, app: str, status: dict[str, Any], correlation: str) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DeploymentTask",
        "metadata": {"name": name, "namespace": "default", "labels": {CORRELATION_LABEL: correlation}},
        "spec": {"app": app, "version": "1.5.0", "maxRing": 2, "requestedBy": "dev-publisher"},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", "deploymenttasks", body)
    if status:
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, "default", "deploymenttasks", name, {"status": status}
        )


MONITORING = {
    "phase": "Monitoring",
    "currentStep": "Monitor",
    "currentRing": 1,
    "progress": "1/3",
    "plan": {
        "digest": "a" * 64,
        "generation": 1,
        "app": "web",
        "version": "1.5.0",
        "action": "Deploy",
        "plane": "kubernetes",
        "maxRing": 2,
        "targets": [1, 2, 3],
        "submitter": "dev-publisher",
    },
    "rings": [
        {"ring": 0, "targets": 1, "updated": 1, "healthy": 1, "gate": "Passed"},
        {"ring": 1, "targets": 2, "updated": 1, "healthy": 1, "gate": "Soaking"},
    ],
    "steps": [
        {"name": "ValidateIntent", "state": "Succeeded", "attempts": 1, "startedAt": stamp(1), "finishedAt": stamp(2)},
        {
            "name": "Deploy",
            "ring": 0,
            "state": "Succeeded",
            "attempts": 1,
            "startedAt": stamp(5),
            "finishedAt": stamp(6),
        },
        {"name": "Monitor", "ring": 1, "state": "Pending"},
    ],
}


async def test_tasks_show_each_planned_ring_and_filter_by_app_and_phase(emulator: Any) -> None:
    admin = api_client(emulator.url)
    apply_crds(admin)
    custom = client.CustomObjectsApi(admin)
    make_task(custom, "web-1-5", "web", MONITORING, "corr-web")
    make_task(custom, "pay-2", "payments", {}, "corr-pay")
    objects = CustomObjects(admin)

    everything = await list_tasks(objects)
    assert {t.name for t in everything.items} == {"web-1-5", "pay-2"}
    web = (await list_tasks(objects, app="web")).items
    assert [t.name for t in web] == ["web-1-5"]
    task = web[0]
    assert (task.phase, task.current_step, task.current_ring, task.progress) == ("Monitoring", "Monitor", 1, "1/3")
    assert (task.requested_by, task.correlation_id) == ("dev-publisher", "corr-web")
    assert [(r.ring, r.targets, r.updated, r.gate) for r in task.rings] == [
        (0, 1, 1, "Passed"),
        (1, 2, 1, "Soaking"),
        (2, 3, 0, "Pending"),  # not started: its target count comes from the plan
    ]
    assert [t.name for t in (await list_tasks(objects, phase="monitoring")).items] == ["web-1-5"]
    assert (await list_tasks(objects, namespace="ring-0-lab")).items == []
    pending = (await list_tasks(objects, app="payments")).items[0]
    assert pending.phase is None and [r.targets for r in pending.rings] == [0, 0, 0]
    admin.close()


def test_a_task_the_models_refuse_is_still_listed() -> None:
    body = {
        "metadata": {"name": "odd", "namespace": "default", "creationTimestamp": "2026-12-01T12:00:00Z"},
        "spec": {"app": "web", "version": "1.5.0", "maxRing": 9},
        "status": {"phase": "Deploying"},
    }
    summary = summarize(body)
    assert (summary.name, summary.app, summary.phase, summary.created_at) == ("odd", "web", "Deploying", T0)


async def seed_chat(pool: Pool, correlation: str) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO conversations (id, namespace, name, user_id, correlation_id) VALUES (%s, %s, %s, %s, %s)",
            ("uid-chat-1", "default", "chat-1", "dev-publisher", correlation),
        )
        for seq, role, text, when in ((1, "user", "deploy web 1.5.0 to ring 0", 0.5), (3, "assistant", "Done.", 3)):
            await conn.execute(
                "INSERT INTO messages (conversation_id, seq, message_id, role, content, correlation_id, turn_id,"
                " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    "uid-chat-1",
                    seq,
                    "m1" if role == "user" else None,
                    role,
                    Jsonb({"text": text}),
                    correlation,
                    "m1",
                    at(when),
                ),
            )
        await conn.execute(
            "INSERT INTO chat_turns (conversation_id, message_id, state, attempts, correlation_id, updated_at)"
            " VALUES (%s, 'm1', 'answered', 1, %s, %s)",
            ("uid-chat-1", correlation, at(3.5)),
        )
        await conn.execute(
            "INSERT INTO chat_tool_calls (conversation_id, call_id, turn_id, tool, arguments, permission, mutating,"
            " outcome, result, duration_ms, correlation_id, created_at)"
            " VALUES (%s, 'c1', 'm1', 'deploy', %s, 'deploy', true, 'executed', %s, 42, %s, %s)",
            ("uid-chat-1", Jsonb({"app": "web"}), Jsonb({"text": "Created web-1-5"}), correlation, at(2.5)),
        )
        await conn.execute(
            "INSERT INTO chat_resources (conversation_id, kind, namespace, name, correlation_id, created_at)"
            " VALUES (%s, 'DeploymentTask', 'default', 'web-1-5', %s, %s)",
            ("uid-chat-1", correlation, at(2.6)),
        )
        await conn.execute(
            "INSERT INTO step_claims (key, correlation_id, owner, claimed_at, outcome, finished_at)"
            " VALUES (%s, %s, 'worker-1', %s, %s, %s), (%s, %s, 'worker-2', %s, NULL, NULL)",
            ("u/Deploy/0/a1", correlation, at(5), Jsonb({"ok": True}), at(5.5), "u/Monitor/1/a1", correlation, at(7)),
        )
        await conn.execute(
            "INSERT INTO rollout_history (at, correlation_id, task, task_uid, app, plane, ring, target, action,"
            " from_version, to_version, changed, step_key)"
            " VALUES (%s, %s, 'web-1-5', 'u', 'web', 'kubernetes', 0, 'ring-0-lab/web', 'deploy', '1.4.0', '1.5.0',"
            " 1, 'u/Deploy/0/a1')",
            (at(5.4), correlation),
        )


async def test_the_database_half_holds_every_table_and_hides_other_users_chat_text(db_pool: Pool) -> None:
    await seed_chat(db_pool, "corr-web")
    await record_audit(
        db_pool,
        AuditEvent(
            correlation_id="corr-web",
            actor="system:ringpilot",
            kind="DeploymentTask",
            namespace="default",
            name="web-1-5",
            action="StepStarted",
            reason="Deploy ring 0",
            trace_id=TRACE_ID,
        ),
    )
    await record_audit(db_pool, AuditEvent(correlation_id="corr-other", actor="x", action="Unrelated"))

    mine = await database_entries(db_pool, "corr-web", Viewer("dev-publisher"))
    sources = sorted({e.source for e in mine})
    assert sources == ["audit", "claim", "message", "resource", "rollout", "tool", "turn"]
    assert all(e.what != "Unrelated" for e in mine)
    audit = next(e for e in mine if e.source == "audit")
    assert (audit.what, audit.trace_id, audit.detail) == ("StepStarted", TRACE_ID, "Deploy ring 0")
    assert next(e for e in mine if e.what == "user m1").detail == "deploy web 1.5.0 to ring 0"
    assert next(e for e in mine if e.source == "tool").detail == "42 ms: Created web-1-5"
    claims = sorted(e.detail for e in mine if e.source == "claim")
    assert claims == ["u/Deploy/0/a1 by worker-1, ok in 0.5 s", "u/Monitor/1/a1 claimed by worker-2, not finished"]
    rollout = next(e for e in mine if e.source == "rollout")
    assert rollout.detail == "deploy web ring 0 ring-0-lab/web (kubernetes): 1.4.0 → 1.5.0, 1 changed"

    theirs = await database_entries(db_pool, "corr-web", Viewer("dev-viewer"))
    chat = [e for e in theirs if e.source in ("message", "tool", "resource", "turn")]
    assert chat and all(e.detail == HIDDEN for e in chat)
    assert {e.what for e in chat} == {e.what for e in mine if e.source in ("message", "tool", "resource", "turn")}
    admin = await database_entries(db_pool, "corr-web", Viewer("dev-admin", admin=True))
    assert next(e for e in admin if e.what == "user m1").detail == "deploy web 1.5.0 to ring 0"


async def test_a_trace_joins_objects_steps_and_events_in_time_order(emulator: Any, db_pool: Pool) -> None:
    admin = api_client(emulator.url)
    apply_crds(admin)
    custom = client.CustomObjectsApi(admin)
    make_task(custom, "web-1-5", "web", MONITORING, "corr-web")
    make_task(custom, "pay-2", "payments", {}, "corr-pay")
    core = CoreApps(admin)
    await core.create_event(
        "default",
        {
            "metadata": {"generateName": "web-1-5."},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "DeploymentTask",
                "namespace": "default",
                "name": "web-1-5",
            },
            "reason": "RingDeployed",
            "message": "Ring 0 runs web@1.5.0",
            "type": "Normal",
            "source": {"component": "ringpilot"},
            "firstTimestamp": stamp(6.5),
            "lastTimestamp": stamp(6.5),
            "count": 1,
        },
    )
    await record_audit(
        db_pool,
        AuditEvent(correlation_id="corr-web", actor="system:ringpilot", action="StepStarted", trace_id=TRACE_ID),
    )
    await seed_chat(db_pool, "corr-web")

    trace = await find_trace(db_pool, CustomObjects(admin), core, "corr-web", Viewer("dev-publisher"))

    assert trace.correlation_id == "corr-web"
    assert trace.trace_ids == [TRACE_ID]
    assert [(o.kind, o.name) for o in trace.objects] == [("DeploymentTask", "web-1-5")]
    times = [e.at for e in trace.entries]
    assert times == sorted(times)
    steps = [(e.what, e.detail) for e in trace.entries if e.source == "step"]
    assert steps == [
        ("ValidateIntent", "Succeeded in 1.0 s, attempt 1"),
        ("Deploy ring 0", "Succeeded in 1.0 s, attempt 1"),
    ]  # a step not started yet has no moment and is left out
    event = next(e for e in trace.entries if e.source == "event")
    assert (event.what, event.detail, event.actor, event.at) == (
        "RingDeployed",
        "Ring 0 runs web@1.5.0",
        "ringpilot",
        at(6.5),
    )
    created = next(e for e in trace.entries if e.source == "object")
    assert (created.what, created.actor, created.detail) == (
        "Created",
        "dev-publisher",
        "web@1.5.0 to ring 2, Monitoring",
    )
    whats = [e.what for e in trace.entries]
    expected = ["user m1", "ValidateIntent", "tool deploy executed", "Deploy ring 0", "RingDeployed"]
    assert [w for w in whats if w in expected] == expected
    nothing = await find_trace(db_pool, CustomObjects(admin), core, "corr-none", Viewer("dev-publisher"))
    assert (nothing.entries, nothing.objects, nothing.trace_ids) == ([], [], [])
    await asyncio.to_thread(admin.close)
