"""Label and field selectors: parsing, matching, and their use in lists (400 on bad syntax).

Parser and matcher tests of `selectors.py`, then selectors in lists via the official client.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from controller.devkit.emulator.apierrors import ApiError
from controller.devkit.emulator.selectors import field_value, parse_field_selector, parse_label_selector
from tests.emulator.samples import GROUP, widget


def obj(**labels: str) -> dict[str, Any]:
    return {"metadata": {"name": "n", "namespace": "ns", "labels": labels}, "spec": {"on": True, "n": 3}}


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a!=b", {"a": "c"}, True),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("a in (x, y)", {"a": "y"}, True),
        ("a in (x,y)", {"a": "z"}, False),
        ("a in (x)", {}, False),
        ("a notin (x)", {"a": "y"}, True),
        ("a notin (x)", {}, True),
        ("a notin (x,y)", {"a": "x"}, False),
        ("a", {"a": ""}, True),
        ("a", {}, False),
        ("!a", {}, True),
        ("! a", {"a": "1"}, False),
        ("a=b,c", {"a": "b", "c": "1"}, True),
        ("a=b, c", {"a": "b"}, False),
        ("a in (x,y),b notin (z)", {"a": "x", "b": "q"}, True),
        ("n>3", {"n": "4"}, True),
        ("n<3", {"n": "4"}, False),
        ("n>3", {"n": "x"}, False),
        ("n>3", {}, False),
        ("example.dev/app=web", {"example.dev/app": "web"}, True),
        ("a=", {"a": ""}, True),
        ("", {"a": "b"}, True),
        ("  ", {}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_label_selector(selector).matches(obj(**labels)) is matches


@pytest.mark.parametrize(
    "selector",
    [
        "a b",
        "a=b c",
        "-a=b",
        "a in x",
        "a=(b)",
        "Bad_/x=y",
        "a=" + "v" * 64,
        "a in (b c)",
        "/a=b",
        "a=b,,",
        "x" * 64,
    ],
)
def test_bad_label_selectors(selector: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_label_selector(selector)
    assert caught.value.code == 400
    assert caught.value.message.startswith("unable to parse requirement")


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("metadata.name=n", True),
        ("metadata.name==n", True),
        ("metadata.name!=n", False),
        ("metadata.namespace=ns,metadata.name=n", True),
        ("metadata.namespace=other", False),
        ("spec.on=true", True),
        ("spec.n=3", True),
        ("spec.missing=", True),
        ("spec.n.deeper=", True),
        ("metadata.name=n\\,x", False),
        ("", True),
    ],
)
def test_field_selectors(selector: str, matches: bool) -> None:
    assert parse_field_selector(selector).matches(obj()) is matches


def test_field_values_and_escapes() -> None:
    assert field_value({"a": {"b": False}}, "a.b") == "false"
    assert parse_field_selector(r"metadata.name=a\,b").matches({"metadata": {"name": "a,b"}})
    with pytest.raises(ApiError) as caught:
        parse_field_selector("metadata.name")
    assert caught.value.code == 400
    assert "can't understand" in caught.value.message


def test_selectors_in_lists(custom: Any, core: Any) -> None:
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        body = widget(name)
        body["metadata"]["labels"] = {"tier": tier}
        custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", body)
    web = custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets", label_selector="tier in (web)")
    assert [i["metadata"]["name"] for i in web["items"]] == ["a", "c"]
    named = custom.list_cluster_custom_object(GROUP, "v1", "widgets", field_selector="metadata.name=b")
    assert [i["metadata"]["name"] for i in named["items"]] == ["b"]
    core.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "e1"},
            "reason": "R",
            "type": "Normal",
            "involvedObject": {"kind": "Widget", "name": "a", "namespace": "default"},
        },
    )
    core.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "e2"},
            "reason": "R",
            "type": "Normal",
            "involvedObject": {"kind": "Widget", "name": "b", "namespace": "default"},
        },
    )
    found = core.list_namespaced_event("default", field_selector="involvedObject.kind=Widget,involvedObject.name=a")
    assert [e.metadata.name for e in found.items] == ["e1"]
    with pytest.raises(ApiException) as caught:
        custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets", label_selector="a b")
    assert caught.value.status == 400
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_event("default", field_selector="nonsense")
    assert caught.value.status == 400
