"""Idempotency keys: one action per key, replayed results, released claims on failure, in-progress
and stale claims, and errors classified as transient or permanent."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from typing import Any

import psycopg
import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from controller.planes import idempotency
from controller.planes.base import ActionResult, PlaneError, TargetRef
from controller.planes.catalog import UnknownPlaneError, build_plane
from controller.planes.idempotency import KeyedRunner, claim_key, correlation_of
from controller.planes.kubeapi import classify_plane_error
from controller.planes.simulated import SimulatedPlane
from controller.storage import claims
from controller.storage.db import Pool

TARGET = TargetRef("simulated", "web", 0, address="d-1")


def test_keys_are_scoped_by_plane_operation_and_target() -> None:
    assert claim_key("kubernetes", "apply", "ns/web", "c-1/deploy") == "plane/kubernetes/apply/ns/web/c-1/deploy"
    assert correlation_of("c-1/deploy/ring-0") == "c-1"
    assert correlation_of("plain") == "plain"
    assert correlation_of("/odd") == "/odd"
    assert idempotency.default_owner().startswith("plane-")


async def test_an_action_runs_once_per_key(db_pool: Pool) -> None:
    runner = KeyedRunner(db_pool, owner="w1")
    calls: list[int] = []

    async def act() -> ActionResult:
        calls.append(1)
        return ActionResult(TARGET, True, "did it", "1.0.0")

    first = await runner.run_action("simulated", "apply", TARGET, "c/k", act)
    second = await runner.run_action("simulated", "apply", TARGET, "c/k", act)
    assert calls == [1]
    assert (first.changed, first.replayed) == (True, False)
    assert (second.changed, second.detail, second.previous_version, second.replayed) == (
        True,
        "did it",
        "1.0.0",
        True,
    )
    stored = await claims.get(db_pool, claim_key("simulated", "apply", "d-1", "c/k"))
    assert stored is not None
    assert stored.correlation_id == "c"
    assert stored.owner == "w1"


async def test_a_failed_action_gives_the_key_back(db_pool: Pool) -> None:
    runner = KeyedRunner(db_pool, owner="w1")

    async def fail() -> dict[str, Any]:
        raise PlaneError("boom", transient=True)

    with pytest.raises(PlaneError, match="boom"):
        await runner.run("k", "c", fail)
    assert await claims.get(db_pool, "k") is None

    async def succeed() -> dict[str, Any]:
        return {"ok": 1}

    assert await runner.run("k", "c", succeed) == ({"ok": 1}, False)


async def test_a_key_in_progress_elsewhere_is_transient_until_it_goes_stale(db_pool: Pool) -> None:
    assert await claims.claim(db_pool, "busy", "c", "other-worker")

    async def act() -> dict[str, Any]:
        return {"by": "me"}

    with pytest.raises(PlaneError, match="in progress elsewhere") as raised:
        await KeyedRunner(db_pool, owner="me").run("busy", "c", act)
    assert raised.value.transient is True
    taken = await KeyedRunner(db_pool, owner="me", stale_claim_seconds=0).run("busy", "c", act)
    assert taken == ({"by": "me"}, False)
    stored = await claims.get(db_pool, "busy")
    assert stored is not None
    assert stored.owner == "me"
    assert stored.outcome == {"by": "me"}


async def test_a_key_whose_owner_process_is_gone_is_taken_over_at_once(db_pool: Pool) -> None:
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    host = socket.gethostname()
    alive = f"plane-{host}-{os.getppid()}"
    assert await claims.claim(db_pool, "mid-call", "c", alive)

    async def act() -> dict[str, Any]:
        return {"by": "me"}

    with pytest.raises(PlaneError, match="in progress elsewhere"):  # its owner still runs
        await KeyedRunner(db_pool, owner="me").run("mid-call", "c", act)
    assert await claims.release(db_pool, "mid-call", alive)
    assert await claims.claim(db_pool, "mid-call", "c", f"plane-{host}-{gone.pid}")  # killed mid-call
    assert await KeyedRunner(db_pool, owner="me").run("mid-call", "c", act) == ({"by": "me"}, False)
    stored = await claims.get(db_pool, "mid-call")
    assert stored is not None and stored.owner == "me"


async def test_a_claim_that_cannot_be_taken_is_transient(db_pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(*_: Any) -> bool:
        return False

    async def nobody(*_: Any) -> None:
        return None

    monkeypatch.setattr(claims, "claim", never)
    monkeypatch.setattr(claims, "get", nobody)

    async def act() -> dict[str, Any]:
        return {}

    with pytest.raises(PlaneError, match="Could not claim") as raised:
        await KeyedRunner(db_pool).run("k", "c", act)
    assert raised.value.transient


async def test_a_database_outage_is_transient(db_pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    async def down(*_: Any) -> bool:
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(claims, "claim", down)

    async def act() -> dict[str, Any]:
        return {}

    with pytest.raises(PlaneError, match="PostgreSQL is unavailable") as raised:
        await KeyedRunner(db_pool).run("k", "c", act)
    assert raised.value.transient


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (422, False),
        (408, True),
        (429, True),
        (500, True),
        (503, True),
        (0, True),
    ],
)
def test_api_errors_are_classified_by_status(status: int, transient: bool) -> None:
    error = ApiException(status=status, reason="Reason")
    error.body = '{"kind": "Status", "message": "deployments.apps \\"web\\" not found"}'
    classified = classify_plane_error(error, "read Deployment ns/web")
    assert (classified.status, classified.transient) == (status, transient)
    assert str(classified) == f'Could not read Deployment ns/web: {status} deployments.apps "web" not found'
    assert classified.not_found == (status == 404)
    assert classified.conflict == (status == 409)


def test_connection_errors_are_transient() -> None:
    for error in (urllib3.exceptions.ProtocolError("Connection aborted"), ConnectionRefusedError("refused")):
        classified = classify_plane_error(error, "list Deployments in ns")
        assert classified.transient
        assert classified.status == 0
    plain = classify_plane_error(ApiException(status=502, reason="Bad Gateway"), "x")
    assert str(plain) == "Could not x: 502 Bad Gateway"


def test_planes_are_built_by_name(db_pool: Pool) -> None:
    from kubernetes import client

    from controller.planes.kubernetes import KubernetesPlane

    assert isinstance(build_plane("simulated", api_client=None, pool=db_pool, seed="s"), SimulatedPlane)
    assert isinstance(build_plane("kubernetes", api_client=client.ApiClient(), pool=db_pool), KubernetesPlane)
    with pytest.raises(ValueError, match="needs a kubernetes"):
        build_plane("kubernetes", api_client=None, pool=db_pool)
    with pytest.raises(UnknownPlaneError, match="Unknown execution plane 'ssh'"):
        build_plane("ssh", api_client=None, pool=db_pool)
