"""A real Kopf operator against the emulator: the full handler lifecycle, and hundreds of objects.

Kopf runs in the test loop with a fresh registry; the emulator serves from its own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import kopf
import pytest
from kubernetes import client

from controller.devkit.emulator import EmulatorServer
from tests.emulator.samples import GROUP, widget

FINALIZER = "example.dev/operator"


class Operator:
    """A fresh Kopf registry with create/update/timer/delete handlers, and what they observed."""

    def __init__(self, url: str) -> None:
        self.registry = kopf.OperatorRegistry()
        self.settings = kopf.OperatorSettings()
        self.settings.persistence.finalizer = FINALIZER
        self.settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="example.dev")
        self.settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="example.dev")
        self.settings.watching.server_timeout = 30
        self.created: dict[str, int] = {}
        self.updated: list[tuple[str, Any]] = []
        self.deleted: list[str] = []
        self.ticks: dict[str, int] = {}
        registry = self.registry

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=url, insecure=True)

        @kopf.on.create(GROUP, "v1", "widgets", registry=registry)
        def create(name: str, spec: Any, retry: int, patch: kopf.Patch, body: Any, **_: Any) -> None:
            self.created[name] = self.created.get(name, 0) + 1
            if spec.get("app") == "flaky" and retry == 0:
                raise kopf.TemporaryError("not ready yet", delay=0.3)
            patch.status["phase"] = "Ready"
            patch.status["conditions"] = [{"type": "Ready", "status": "True", "reason": "Reconciled"}]
            if spec.get("app") != "bulk":
                kopf.info(body, reason="Reconciled", message=f"Widget {name} is ready")

        @kopf.on.update(GROUP, "v1", "widgets", field="spec.maxRing", registry=registry)
        def update(name: str, new: Any, meta: Any, patch: kopf.Patch, **_: Any) -> None:
            self.updated.append((name, new))
            patch.status["observedGeneration"] = meta["generation"]

        @kopf.timer(
            GROUP,
            "v1",
            "widgets",
            interval=0.3,
            registry=registry,
            when=lambda spec, **_: spec.get("app") == "timed",
        )
        def tick(name: str, patch: kopf.Patch, **_: Any) -> None:
            self.ticks[name] = self.ticks.get(name, 0) + 1
            patch.metadata.annotations["example.dev/ticks"] = str(self.ticks[name])

        @kopf.on.delete(GROUP, "v1", "widgets", registry=registry)
        def delete(name: str, **_: Any) -> None:
            self.deleted.append(name)


@contextlib.asynccontextmanager
async def running(operator: Operator) -> AsyncIterator[None]:
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            registry=operator.registry,
            settings=operator.settings,
            standalone=True,
            clusterwide=True,
            stop_flag=stop,
            ready_flag=ready,
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), 10)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def until(check: Callable[[], Awaitable[bool]], limit_seconds: float = 15.0) -> None:
    deadline = time.monotonic() + limit_seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture(autouse=True)
def quiet_kopf(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kopf")


async def test_full_handler_lifecycle(server: EmulatorServer, kube_api: Any) -> None:
    custom, core = client.CustomObjectsApi(kube_api), client.CoreV1Api(kube_api)
    operator = Operator(server.url)

    async def get(name: str) -> dict[str, Any]:
        obj: dict[str, Any] = await asyncio.to_thread(
            custom.get_namespaced_custom_object, GROUP, "v1", "default", "widgets", name
        )
        return obj

    async def ready(name: str) -> bool:
        obj = await get(name)
        return (obj.get("status") or {}).get("phase") == "Ready" and FINALIZER in obj["metadata"].get("finalizers", [])

    async with running(operator):
        for name, app in (("plain", "web"), ("flaky", "flaky"), ("timed", "timed")):
            await asyncio.to_thread(
                custom.create_namespaced_custom_object,
                GROUP,
                "v1",
                "default",
                "widgets",
                widget(name, app=app),
            )
        for name in ("plain", "flaky", "timed"):
            await until(lambda name=name: ready(name))  # type: ignore[misc]
        assert operator.created == {"plain": 1, "flaky": 2, "timed": 1}
        flaky = await get("flaky")
        assert not any(k.startswith("example.dev/create") for k in flaky["metadata"].get("annotations", {}))

        await asyncio.to_thread(
            custom.patch_namespaced_custom_object,
            GROUP,
            "v1",
            "default",
            "widgets",
            "plain",
            {"spec": {"maxRing": 3}},
        )

        async def observed() -> bool:
            return (await get("plain")).get("status", {}).get("observedGeneration") == 2

        await until(observed)
        assert operator.updated == [("plain", 3)]

        async def ticked() -> bool:
            annotations = (await get("timed"))["metadata"].get("annotations", {})
            return int(annotations.get("example.dev/ticks", "0")) >= 2

        await until(ticked)
        events = await asyncio.to_thread(
            core.list_namespaced_event, "default", field_selector="involvedObject.name=plain"
        )
        assert [e.reason for e in events.items] == ["Reconciled"]

        for name in ("plain", "flaky", "timed"):
            await asyncio.to_thread(custom.delete_namespaced_custom_object, GROUP, "v1", "default", "widgets", name)

        async def all_gone() -> bool:
            listing = await asyncio.to_thread(custom.list_namespaced_custom_object, GROUP, "v1", "default", "widgets")
            return not listing["items"]

        await until(all_gone)
        # Without a timer the deletion handler runs once and the finalizer goes in the same patch. A timer
        # stops over several handling cycles and Kopf purges the handler's progress on the first, so it may
        # run the handler again before it lets the object go: at least once, as Kopf promises.
        assert operator.deleted.count("plain") == operator.deleted.count("flaky") == 1
        assert "timed" in operator.deleted


async def test_hundreds_of_objects_are_reconciled(server: EmulatorServer, kube_api: Any) -> None:
    custom = client.CustomObjectsApi(kube_api)
    operator = Operator(server.url)
    total = 250

    def create_all() -> None:
        for i in range(total):
            custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget(f"w{i:03}", app="bulk"))

    def count_ready() -> int:
        items = custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")["items"]
        return sum(1 for i in items if (i.get("status") or {}).get("phase") == "Ready")

    async with running(operator):
        started = time.monotonic()
        await asyncio.to_thread(create_all)

        async def all_ready() -> bool:
            return await asyncio.to_thread(count_ready) == total

        await until(all_ready, limit_seconds=40)
        elapsed = time.monotonic() - started
        assert len(operator.created) == total
        await asyncio.to_thread(custom.delete_collection_namespaced_custom_object, GROUP, "v1", "default", "widgets")

        async def all_gone() -> bool:
            listing = await asyncio.to_thread(custom.list_namespaced_custom_object, GROUP, "v1", "default", "widgets")
            return not listing["items"]

        await until(all_gone, limit_seconds=40)
        assert len(operator.deleted) == total
    print(f"{total} widgets reconciled in {elapsed:.1f}s, deleted in {time.monotonic() - started - elapsed:.1f}s")
