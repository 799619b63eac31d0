"""Custom resource validation against the CRD schema: keywords, messages, defaults, pruning.

Uses the `Widget` CRD of `samples.py`, whose schema exercises every supported keyword.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from controller.devkit.emulator import EmulatorServer
from controller.devkit.emulator.schemas import Validator, apply_defaults, prune, validate_object
from tests.emulator.samples import GROUP, WIDGET_SCHEMA, widget

WIDGETS = f"/apis/{GROUP}/v1/namespaces/default/widgets"


def create(server: EmulatorServer, body: dict[str, Any], **params: str) -> requests.Response:
    return requests.post(server.url + WIDGETS, json=body, params=params, timeout=5)


def causes(response: requests.Response) -> list[tuple[str, str, str]]:
    assert response.status_code == 422, response.text
    status = response.json()
    assert status["reason"] == "Invalid"
    assert status["details"]["kind"] == "Widget"
    return [(c["reason"], c["field"], c["message"]) for c in status["details"]["causes"]]


def test_message_is_shaped_like_the_real_server(server: EmulatorServer) -> None:
    response = create(server, widget("x", app="web", maxRing=7))
    assert response.json()["message"] == (
        'Widget.example.dev "x" is invalid: spec.maxRing: Invalid value: 7: '
        "spec.maxRing in body should be less "
        "than or equal to 4"
    )
    assert causes(response) == [
        (
            "FieldValueInvalid",
            "spec.maxRing",
            "Invalid value: 7: spec.maxRing in body should be less than or equal to 4",
        )
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"app": 5},
            (
                "FieldValueTypeInvalid",
                "spec.app",
                'Invalid value: "integer": spec.app in body must be of type string: "integer"',
            ),
        ),
        ({}, ("FieldValueRequired", "spec.app", "Required value")),
        (
            {"app": "web", "action": "Jump"},
            (
                "FieldValueNotSupported",
                "spec.action",
                'Unsupported value: "Jump": supported values: "Deploy", "Rollback"',
            ),
        ),
        (
            {"app": "web", "maxRing": -1},
            (
                "FieldValueInvalid",
                "spec.maxRing",
                "Invalid value: -1: spec.maxRing in body should be greater than or equal to 0",
            ),
        ),
        (
            {"app": "web", "replicas": 0},
            (
                "FieldValueInvalid",
                "spec.replicas",
                "Invalid value: 0: spec.replicas in body should be greater than 0",
            ),
        ),
        (
            {"app": "web", "replicas": 100},
            (
                "FieldValueInvalid",
                "spec.replicas",
                "Invalid value: 100: spec.replicas in body should be less than 100",
            ),
        ),
        (
            {"app": "w"},
            (
                "FieldValueInvalid",
                "spec.app",
                'Invalid value: "w": spec.app in body should be at least 2 chars long',
            ),
        ),
        ({"app": "a" * 21}, ("FieldValueTooLong", "spec.app", "Too long: may not be more than 20 bytes")),
        (
            {"app": "Web"},
            (
                "FieldValueInvalid",
                "spec.app",
                "Invalid value: \"Web\": spec.app in body should match '^[a-z][a-z0-9-]*$'",
            ),
        ),
        (
            {"app": "web", "tags": []},
            (
                "FieldValueInvalid",
                "spec.tags",
                "Invalid value: []: spec.tags in body should have at least 1 items",
            ),
        ),
        (
            {"app": "web", "tags": ["a", "b", "c", "d"]},
            ("FieldValueTooMany", "spec.tags", "Too many: 4: must have at most 3 items"),
        ),
        ({"app": "web", "tags": ["a", "a"]}, ("FieldValueDuplicate", "spec.tags[1]", 'Duplicate value: "a"')),
        (
            {"app": "web", "deadline": "tomorrow"},
            (
                "FieldValueTypeInvalid",
                "spec.deadline",
                'Invalid value: "tomorrow": spec.deadline in body must be of type date-time: "tomorrow"',
            ),
        ),
        (
            {"app": "web", "weight": 0.3},
            (
                "FieldValueInvalid",
                "spec.weight",
                "Invalid value: 0.3: spec.weight in body should be a multiple of 0.5",
            ),
        ),
        (
            {"app": "web", "port": True},
            (
                "FieldValueTypeInvalid",
                "spec.port",
                'Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"',
            ),
        ),
        (
            {"app": "web", "labels": {"a": "x" * 11}},
            ("FieldValueTooLong", "spec.labels.a", "Too long: may not be more than 10 bytes"),
        ),
        (
            {"app": "web", "targets": [{"name": "a"}, {"name": "a"}]},
            ("FieldValueDuplicate", "spec.targets[1]", 'Duplicate value: "a"'),
        ),
        (
            {"app": "web", "targets": [{"weight": 1}]},
            ("FieldValueRequired", "spec.targets[0].name", "Required value"),
        ),
        (
            {"app": "web", "paused": "yes"},
            (
                "FieldValueTypeInvalid",
                "spec.paused",
                'Invalid value: "string": spec.paused in body must be of type boolean: "string"',
            ),
        ),
    ],
)
def test_every_keyword_is_enforced(
    server: EmulatorServer, spec: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    assert causes(create(server, widget("x", **spec) if spec else {**widget("x"), "spec": {}})) == [expected]


def test_several_errors_are_listed_in_brackets(server: EmulatorServer) -> None:
    response = create(server, widget("x", app="W", maxRing=9))
    assert response.json()["message"].startswith('Widget.example.dev "x" is invalid: [spec.app: Invalid value')
    assert [c[1] for c in causes(response)] == ["spec.app", "spec.app", "spec.maxRing"]


def test_valid_values_pass(server: EmulatorServer) -> None:
    response = create(
        server,
        widget(
            "x",
            app="web",
            replicas=5,
            weight=1.5,
            tags=["a"],
            port="http",
            deadline="2026-01-02T03:04:05Z",
            note=None,
            extra={"any": {"thing": 1}},
            labels={"k": "v"},
            targets=[{"name": "a"}],
            paused=False,
        ),
    )
    assert response.status_code == 201, response.text
    spec = response.json()["spec"]
    assert spec["note"] is None
    assert spec["extra"] == {"any": {"thing": 1}}
    assert spec["targets"] == [{"name": "a", "weight": 1}]
    assert spec["maxRing"] == 1
    assert spec["action"] == "Deploy"
    assert create(server, widget("y", app="web", port=8080, weight=2)).status_code == 201


def test_unknown_fields_are_pruned_with_a_warning(server: EmulatorServer) -> None:
    body = widget("x", app="web", bogus=1)
    body["metadata"]["junk"] = True
    body["top"] = 1
    response = create(server, body)
    assert response.status_code == 201
    assert "bogus" not in response.json()["spec"]
    assert "top" not in response.json()
    assert "junk" not in response.json()["metadata"]
    warnings = response.raw.headers.getlist("Warning")
    assert '299 - "unknown field \\"spec.bogus\\""' in warnings


def test_strict_field_validation_rejects_unknown_fields(server: EmulatorServer) -> None:
    response = create(server, widget("x", app="web", bogus=1), fieldValidation="Strict")
    assert response.status_code == 400
    assert response.json()["message"] == (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.bogus"'
    )
    assert create(server, widget("y", app="web", bogus=1), fieldValidation="Ignore").status_code == 201
    assert create(server, widget("z", app="web"), fieldValidation="Loud").status_code == 400


def test_non_nullable_nulls_are_dropped_and_defaulted(server: EmulatorServer) -> None:
    response = create(server, widget("x", app="web", maxRing=None, paused=None))
    assert response.status_code == 201
    assert response.json()["spec"] == {"app": "web", "maxRing": 1, "action": "Deploy"}


def test_status_is_validated_on_status_writes(server: EmulatorServer) -> None:
    assert create(server, widget("x")).status_code == 201
    url = f"{server.url}{WIDGETS}/x/status"
    bad = requests.patch(
        url,
        json={"status": {"phase": "Sleeping"}},
        timeout=5,
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert causes(bad) == [
        (
            "FieldValueNotSupported",
            "status.phase",
            'Unsupported value: "Sleeping": supported values: "Pending", "Ready", "Failed"',
        )
    ]
    condition = requests.patch(
        url,
        json={"status": {"conditions": [{"type": "Ready"}]}},
        timeout=5,
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert causes(condition) == [("FieldValueRequired", "status.conditions[0].status", "Required value")]


def test_update_does_not_recheck_unchanged_invalid_fields(server: EmulatorServer) -> None:
    assert create(server, widget("x", app="web", code="abcd")).status_code == 201
    crd = requests.get(
        f"{server.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{GROUP}", timeout=5
    ).json()
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["code"]["minLength"] = (
        10
    )
    server.apply_crd(crd)
    ok = requests.patch(
        f"{server.url}{WIDGETS}/x",
        json={"spec": {"maxRing": 2}},
        timeout=5,
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert ok.status_code == 200, ok.text
    changed = requests.patch(
        f"{server.url}{WIDGETS}/x",
        json={"spec": {"code": "abcde"}},
        timeout=5,
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert causes(changed)[0][1] == "spec.code"


def test_schema_functions_directly() -> None:
    obj = {
        "apiVersion": "x",
        "kind": "Widget",
        "metadata": {"name": "n"},
        "spec": {"app": "web", "zz": 1},
        "status": {"phase": "Ready", "extra": 2},
    }
    unknown: list[str] = []
    prune(obj, WIDGET_SCHEMA, (), unknown, root=True)
    assert sorted(unknown) == ["spec.zz", "status.extra"]
    apply_defaults(obj, WIDGET_SCHEMA)
    assert obj["spec"] == {"app": "web", "maxRing": 1, "action": "Deploy"}
    assert validate_object(obj, WIDGET_SCHEMA) == []


@pytest.mark.parametrize(
    ("schema", "value", "detail"),
    [
        ({"allOf": [{"minimum": 5}]}, 3, "should be greater than or equal to 5"),
        (
            {"anyOf": [{"type": "string"}, {"type": "boolean"}]},
            3,
            "must validate at least one schema (anyOf)",
        ),
        ({"oneOf": [{"minimum": 1}, {"minimum": 2}]}, 3, "must validate one and only one schema (oneOf)"),
        ({"not": {"type": "integer"}}, 3, "must not validate the schema (not)"),
        ({"type": "array", "uniqueItems": True}, [1, 1], "shouldn't contain duplicates"),
        ({"type": "object", "minProperties": 2}, {"a": 1}, "should have at least 2 properties"),
        ({"type": "object", "maxProperties": 1}, {"a": 1, "b": 2}, "must have at most 1 items"),
        ({"type": "string", "format": "uuid"}, "nope", "must be of type uuid"),
        ({"type": "string", "format": "date"}, "2026-13-01", "must be of type date"),
        ({"type": "string", "format": "byte"}, "***", "must be of type byte"),
        ({"type": "string", "format": "ipv4"}, "::1", "must be of type ipv4"),
        ({"type": "string", "nullable": False}, None, 'must be of type string: "null"'),
        (
            {"type": "number", "minimum": 1.5, "maximum": 2, "exclusiveMaximum": True},
            2,
            "should be less than 2",
        ),
        ({"type": "integer", "minimum": 1}, 0.5, 'must be of type integer: "number"'),
    ],
)
def test_combinators_and_formats(schema: dict[str, Any], value: Any, detail: str) -> None:
    errors = Validator().validate(value, schema, ("spec", "x"))
    assert errors
    assert detail in errors[0].detail


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "integer"}, 2.0),
        ({"type": "number"}, 2),
        ({"type": "string", "format": "ipv6"}, "::1"),
        ({"type": "string", "format": "uuid"}, "6f1d8e4c-8b1e-4f0a-9a52-9e1c1c1c1c1c"),
        ({"type": "string", "format": "email"}, "whatever"),
        ({"type": "string", "nullable": True}, None),
        ({"type": "string", "format": "date-time"}, "2026-01-02T03:04:05.123+02:00"),
    ],
)
def test_valid_edge_values(schema: dict[str, Any], value: Any) -> None:
    assert Validator().validate(value, schema, ("spec",)) == []
