"""Watch streams: resourceVersion semantics, no lost events, 410 Gone, timeouts, bookmarks, selectors.

Driven by `watch.Watch()` of the official client and by raw chunked HTTP streams.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from controller.devkit.emulator import EmulatorServer
from tests.emulator.samples import GROUP, WIDGET_CRD, widget
from tests.fixtures.kube import api_client

WIDGETS = f"/apis/{GROUP}/v1/namespaces/default/widgets"


def stream(server: EmulatorServer, path: str, limit: int = 0, **params: str) -> list[dict[str, Any]]:
    """Raw watch events, until `limit` of them arrived (0: until the server ends the stream)."""
    got: list[dict[str, Any]] = []
    with requests.get(server.url + path, params={"watch": "true", **params}, stream=True, timeout=10) as response:
        assert response.headers["Content-Type"] == "application/json"
        for line in response.iter_lines():
            if line:
                got.append(json.loads(line))
                if len(got) == limit:
                    break
    return got


def take(events: Iterator[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    try:
        for event in events:
            got.append(event)
            if len(got) == limit:
                break
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
    return got


def events(custom: Any, rv: str | None = None, timeout: int = 5, **kw: Any) -> Iterator[dict[str, Any]]:
    result: Iterator[dict[str, Any]] = watch.Watch().stream(
        custom.list_namespaced_custom_object,
        GROUP,
        "v1",
        "default",
        "widgets",
        resource_version=rv,
        timeout_seconds=timeout,
        **kw,
    )
    return result


def test_watch_from_a_list_loses_nothing(custom: Any) -> None:
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("before"))
    listing = custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")
    for name in ("a", "b"):
        custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget(name))
    custom.delete_namespaced_custom_object(GROUP, "v1", "default", "widgets", "before")
    got = take(events(custom, listing["metadata"]["resourceVersion"]), 3)
    seen = [(e["type"], e["object"]["metadata"]["name"]) for e in got]
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "before")]


@pytest.mark.parametrize("rv", [None, "0"])
def test_watch_without_version_starts_with_the_current_state(custom: Any, rv: str | None) -> None:
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("a"))
    (first,) = take(events(custom, rv), 1)
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "a")


def test_modified_events_carry_new_versions(server: EmulatorServer, custom: Any) -> None:
    created = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("a"))
    rv = created["metadata"]["resourceVersion"]

    def change() -> None:
        time.sleep(0.2)
        custom.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "a", {"spec": {"maxRing": 3}})

    threading.Thread(target=change).start()
    (event,) = stream(server, WIDGETS, 1, resourceVersion=rv, timeoutSeconds="2")
    assert event["type"] == "MODIFIED"
    assert event["object"]["spec"]["maxRing"] == 3
    assert int(event["object"]["metadata"]["resourceVersion"]) > int(rv)


def test_watch_equals_one_and_timeout_seconds(server: EmulatorServer) -> None:
    started = time.monotonic()
    with requests.get(
        server.url + WIDGETS, params={"watch": "1", "timeoutSeconds": "1"}, stream=True, timeout=10
    ) as response:
        assert response.status_code == 200
        assert response.headers.get("Transfer-Encoding") == "chunked"
        assert list(response.iter_lines()) == []
    # the server ended it after timeoutSeconds (not early, and not the client's own 10 s timeout)
    assert 0.9 < time.monotonic() - started < 8


def test_too_old_resource_version_is_410_gone(tmp_path: Any) -> None:
    with EmulatorServer(history_size=5) as server:
        server.apply_crd(WIDGET_CRD)
        custom = client.CustomObjectsApi(api_client(server.url))
        for i in range(10):
            custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget(f"w{i}"))
        (error,) = stream(server, WIDGETS, resourceVersion="2")
        assert error["type"] == "ERROR"
        assert error["object"]["code"] == 410
        assert error["object"]["reason"] == "Expired"
        assert error["object"]["message"].startswith("too old resource version: 2")
        with pytest.raises(ApiException) as caught:
            take(events(custom, "2"), 1)
        assert caught.value.status == 410
        latest = custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")["metadata"]
        assert take(events(custom, latest["resourceVersion"], timeout=1), 1) == []
        bad = requests.get(server.url + WIDGETS, params={"watch": "true", "resourceVersion": "x"}, timeout=5)
        assert bad.status_code == 200
        assert '"code":400' in bad.text


def test_bookmarks() -> None:
    with EmulatorServer(bookmark_interval_seconds=0.3) as server:
        server.apply_crd(WIDGET_CRD)
        custom = client.CustomObjectsApi(api_client(server.url))
        created = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("a"))
        rv = created["metadata"]["resourceVersion"]
        got = stream(server, WIDGETS, 2, resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds="5")
        assert [e["type"] for e in got] == ["BOOKMARK", "BOOKMARK"]
        assert got[0]["object"]["kind"] == "Widget"
        assert int(got[0]["object"]["metadata"]["resourceVersion"]) >= int(rv)
        quiet = stream(server, WIDGETS, resourceVersion=rv, timeoutSeconds="1")
        assert quiet == []


def test_send_initial_events_ends_with_a_bookmark(server: EmulatorServer, custom: Any) -> None:
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("a"))
    got = stream(
        server,
        WIDGETS,
        2,
        sendInitialEvents="true",
        allowWatchBookmarks="true",
        resourceVersionMatch="NotOlderThan",
        timeoutSeconds="5",
    )
    assert got[0]["type"] == "ADDED"
    assert got[1]["type"] == "BOOKMARK"
    assert got[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_label_selector_applies_to_events_and_transitions(custom: Any) -> None:
    body = widget("a")
    body["metadata"]["labels"] = {"tier": "web"}
    created = custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", body)
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("b"))
    custom.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "a", {"spec": {"maxRing": 2}})
    custom.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "a", {"metadata": {"labels": None}})
    custom.patch_namespaced_custom_object(
        GROUP, "v1", "default", "widgets", "b", {"metadata": {"labels": {"tier": "web"}}}
    )
    seen = [
        (e["type"], e["object"]["metadata"]["name"])
        for e in take(events(custom, created["metadata"]["resourceVersion"], label_selector="tier=web"), 3)
    ]
    assert seen == [("MODIFIED", "a"), ("DELETED", "a"), ("ADDED", "b")]


def test_field_selector_and_single_object_watch(server: EmulatorServer, custom: Any) -> None:
    for name in ("a", "b"):
        custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget(name))
    rv = custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")["metadata"]["resourceVersion"]
    for name in ("a", "b"):
        custom.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", name, {"spec": {"maxRing": 2}})
    seen = [e["object"]["metadata"]["name"] for e in take(events(custom, rv, field_selector="metadata.name=b"), 1)]
    assert seen == ["b"]
    single = [e["object"]["metadata"]["name"] for e in stream(server, f"{WIDGETS}/b", 1, resourceVersion=rv)]
    assert single == ["b"]


def test_cluster_wide_and_namespaced_watches(custom: Any, core: Any) -> None:
    core.create_namespace({"metadata": {"name": "other"}})
    rv = custom.list_cluster_custom_object(GROUP, "v1", "widgets")["metadata"]["resourceVersion"]
    custom.create_namespaced_custom_object(GROUP, "v1", "other", "widgets", widget("x", "other"))
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("y"))
    everywhere = watch.Watch().stream(
        custom.list_cluster_custom_object, GROUP, "v1", "widgets", resource_version=rv, timeout_seconds=5
    )
    assert [e["object"]["metadata"]["namespace"] for e in take(everywhere, 2)] == ["other", "default"]
    assert [e["object"]["metadata"]["name"] for e in take(events(custom, rv), 1)] == ["y"]


def test_builtin_watch_through_the_typed_client(core: Any) -> None:
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    (event,) = take(
        watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5),
        1,
    )
    assert event["type"] == "ADDED"
    assert event["object"].metadata.name == "cm"


def test_streams_end_when_the_crd_goes_away(server: EmulatorServer, custom: Any, kube_api: Any) -> None:
    rv = custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")["metadata"]["resourceVersion"]

    def drop() -> None:
        time.sleep(0.3)
        client.ApiextensionsV1Api(kube_api).delete_custom_resource_definition(f"widgets.{GROUP}")

    threading.Thread(target=drop).start()
    started = time.monotonic()
    assert stream(server, WIDGETS, resourceVersion=rv, timeoutSeconds="10") == []
    assert time.monotonic() - started < 9  # ended by the deletion, before its own 10 s timeout


def test_no_event_is_lost_under_concurrent_writes(server: EmulatorServer, custom: Any) -> None:
    total = 150
    writer_client = client.CustomObjectsApi(api_client(server.url))

    def write() -> None:
        for i in range(total):
            writer_client.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget(f"w{i:03}"))

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.05)
    listing = custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")
    seen = {i["metadata"]["name"] for i in listing["items"]}
    missing = total - len(seen)
    for event in take(events(custom, listing["metadata"]["resourceVersion"], timeout=10), missing):
        assert event["object"]["metadata"]["name"] not in seen
        seen.add(event["object"]["metadata"]["name"])
    writer.join()
    assert len(seen) == total
