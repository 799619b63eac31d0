"""Decoding of Kubernetes protobuf request bodies for the built-in kinds kubectl creates that way.

kubectl's typed clients (`kubectl create namespace|configmap|secret|serviceaccount|deployment|service`,
`kubectl run`) POST `application/vnd.kubernetes.protobuf` and do not fall back to JSON on 415, so
`negotiation.py` decodes those bodies here into JSON values; also the review kinds and TokenRequest that
`kubectl auth whoami|can-i` and `kubectl create token|role|rolebinding|...` send. Other kinds answer 415.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from .apierrors import ApiError

PROTOBUF = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
Schema = dict[int, tuple[str, str, Any]]
_KEEP_ZERO = {"replicas", "intVal"}

META: Schema = {
    1: ("name", "str", None),
    2: ("generateName", "str", None),
    3: ("namespace", "str", None),
    5: ("uid", "str", None),
    6: ("resourceVersion", "str", None),
    11: ("labels", "map", None),
    12: ("annotations", "map", None),
    14: ("finalizers", "rstr", None),
    13: (
        "ownerReferences",
        "rmsg",
        {
            1: ("kind", "str", None),
            3: ("name", "str", None),
            4: ("uid", "str", None),
            5: ("apiVersion", "str", None),
            6: ("controller", "bool", None),
            7: ("blockOwnerDeletion", "bool", None),
        },
    ),
}
SELECTOR: Schema = {
    1: ("matchLabels", "map", None),
    2: (
        "matchExpressions",
        "rmsg",
        {1: ("key", "str", None), 2: ("operator", "str", None), 3: ("values", "rstr", None)},
    ),
}
CONTAINER: Schema = {
    1: ("name", "str", None),
    2: ("image", "str", None),
    3: ("command", "rstr", None),
    4: ("args", "rstr", None),
    5: ("workingDir", "str", None),
    6: (
        "ports",
        "rmsg",
        {
            1: ("name", "str", None),
            2: ("hostPort", "int", None),
            3: ("containerPort", "int", None),
            4: ("protocol", "str", None),
        },
    ),
    7: ("env", "rmsg", {1: ("name", "str", None), 2: ("value", "str", None)}),
    9: (
        "volumeMounts",
        "rmsg",
        {
            1: ("name", "str", None),
            2: ("readOnly", "bool", None),
            3: ("mountPath", "str", None),
            4: ("subPath", "str", None),
        },
    ),
    13: ("terminationMessagePath", "str", None),
    14: ("imagePullPolicy", "str", None),
    16: ("stdin", "bool", None),
    17: ("stdinOnce", "bool", None),
    18: ("tty", "bool", None),
    20: ("terminationMessagePolicy", "str", None),
}
POD_SPEC: Schema = {
    2: ("containers", "rmsg", CONTAINER),
    20: ("initContainers", "rmsg", CONTAINER),
    3: ("restartPolicy", "str", None),
    4: ("terminationGracePeriodSeconds", "int", None),
    6: ("dnsPolicy", "str", None),
    7: ("nodeSelector", "map", None),
    8: ("serviceAccountName", "str", None),
    10: ("nodeName", "str", None),
    19: ("schedulerName", "str", None),
}
INT_OR_STRING: Schema = {1: ("type", "int", None), 2: ("intVal", "int", None), 3: ("strVal", "str", None)}
KINDS: dict[str, Schema] = {
    "Namespace": {1: ("metadata", "msg", META), 2: ("spec", "msg", {1: ("finalizers", "rstr", None)})},
    "ConfigMap": {
        1: ("metadata", "msg", META),
        2: ("data", "map", None),
        3: ("binaryData", "bmap", None),
        4: ("immutable", "bool", None),
    },
    "Secret": {
        1: ("metadata", "msg", META),
        2: ("data", "bmap", None),
        3: ("type", "str", None),
        4: ("stringData", "map", None),
        5: ("immutable", "bool", None),
    },
    "ServiceAccount": {
        1: ("metadata", "msg", META),
        3: ("imagePullSecrets", "rmsg", {1: ("name", "str", None)}),
        4: ("automountServiceAccountToken", "bool", None),
    },
    "Pod": {1: ("metadata", "msg", META), 2: ("spec", "msg", POD_SPEC)},
    "Deployment": {
        1: ("metadata", "msg", META),
        2: (
            "spec",
            "msg",
            {
                1: ("replicas", "int", None),
                2: ("selector", "msg", SELECTOR),
                3: ("template", "msg", {1: ("metadata", "msg", META), 2: ("spec", "msg", POD_SPEC)}),
                4: (
                    "strategy",
                    "msg",
                    {
                        1: ("type", "str", None),
                        2: ("rollingUpdate", "msg", {1: ("maxUnavailable", "ios", None), 2: ("maxSurge", "ios", None)}),
                    },
                ),
                5: ("minReadySeconds", "int", None),
                6: ("revisionHistoryLimit", "int", None),
                7: ("paused", "bool", None),
                9: ("progressDeadlineSeconds", "int", None),
            },
        ),
    },
    "Service": {
        1: ("metadata", "msg", META),
        2: (
            "spec",
            "msg",
            {
                1: (
                    "ports",
                    "rmsg",
                    {
                        1: ("name", "str", None),
                        2: ("protocol", "str", None),
                        3: ("port", "int", None),
                        4: ("targetPort", "ios", None),
                        5: ("nodePort", "int", None),
                    },
                ),
                2: ("selector", "map", None),
                3: ("clusterIP", "str", None),
                4: ("type", "str", None),
                5: ("externalIPs", "rstr", None),
                7: ("sessionAffinity", "str", None),
                10: ("externalName", "str", None),
                18: ("clusterIPs", "rstr", None),
            },
        ),
    },
}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    i = 0
    while i < len(buf):
        tag, i = _varint(buf, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield number, value - (1 << 64) if value >= 1 << 63 else value
        elif wire == 2:
            size, i = _varint(buf, i)
            yield number, buf[i : i + size]
            i += size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            yield number, int.from_bytes(buf[i : i + width], "little")
            i += width
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _entry(buf: bytes) -> tuple[str, bytes]:
    key, value = b"", b""
    for number, raw in _fields(buf):
        if isinstance(raw, bytes):
            key, value = (raw, value) if number == 1 else (key, raw)
    return key.decode(), value


def _empty(name: str, value: Any) -> bool:
    if name in _KEEP_ZERO:
        return False
    return value in ("", 0, False, None) or value == {} or value == []


def _int_or_string(buf: bytes) -> int | str:
    fields = decode_message(buf, INT_OR_STRING)
    return str(fields.get("strVal", "")) if fields.get("type") == 1 else int(fields.get("intVal", 0))


_RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", "str", None),
    2: ("verb", "str", None),
    3: ("group", "str", None),
    4: ("version", "str", None),
    5: ("resource", "str", None),
    6: ("subresource", "str", None),
    7: ("name", "str", None),
}
_ACCESS: Schema = {
    1: ("resourceAttributes", "msg", _RESOURCE_ATTRIBUTES),
    2: ("nonResourceAttributes", "msg", {1: ("path", "str", None), 2: ("verb", "str", None)}),
}


def _review(spec: Schema) -> Schema:
    return {1: ("metadata", "msg", META), 2: ("spec", "msg", spec)}


KINDS.update(
    {
        "SelfSubjectReview": {1: ("metadata", "msg", META)},
        "SelfSubjectAccessReview": _review(_ACCESS),
        "SubjectAccessReview": _review(
            {**_ACCESS, 3: ("user", "str", None), 4: ("groups", "rstr", None), 6: ("uid", "str", None)}
        ),
        "LocalSubjectAccessReview": _review(
            {**_ACCESS, 3: ("user", "str", None), 4: ("groups", "rstr", None), 6: ("uid", "str", None)}
        ),
        "SelfSubjectRulesReview": _review({1: ("namespace", "str", None)}),
        "TokenReview": _review({1: ("token", "str", None), 2: ("audiences", "rstr", None)}),
        "TokenRequest": _review({1: ("audiences", "rstr", None), 4: ("expirationSeconds", "int", None)}),
    }
)
_RULE: Schema = {
    1: ("verbs", "rstr", None),
    2: ("apiGroups", "rstr", None),
    3: ("resources", "rstr", None),
    4: ("resourceNames", "rstr", None),
    5: ("nonResourceURLs", "rstr", None),
}
_BINDING: Schema = {
    1: ("metadata", "msg", META),
    2: (
        "subjects",
        "rmsg",
        {
            1: ("kind", "str", None),
            2: ("apiGroup", "str", None),
            3: ("name", "str", None),
            4: ("namespace", "str", None),
        },
    ),
    3: ("roleRef", "msg", {1: ("apiGroup", "str", None), 2: ("kind", "str", None), 3: ("name", "str", None)}),
}
KINDS.update(
    {
        "Role": {1: ("metadata", "msg", META), 2: ("rules", "rmsg", _RULE)},
        "ClusterRole": {1: ("metadata", "msg", META), 2: ("rules", "rmsg", _RULE)},
        "RoleBinding": _BINDING,
        "ClusterRoleBinding": _BINDING,
    }
)


def decode_message(buf: bytes, schema: Schema) -> dict[str, Any]:
    """Decode one message by its field table, dropping zero values as JSON's `omitempty` would."""
    out: dict[str, Any] = {}
    for number, raw in _fields(buf):
        if number not in schema:
            continue
        name, kind, sub = schema[number]
        if isinstance(raw, int):
            out[name] = bool(raw) if kind == "bool" else raw
        elif kind == "str":
            out[name] = raw.decode()
        elif kind == "msg":
            out[name] = decode_message(raw, sub)
        elif kind == "rmsg":
            out.setdefault(name, []).append(decode_message(raw, sub))
        elif kind == "rstr":
            out.setdefault(name, []).append(raw.decode())
        elif kind == "ios":
            out[name] = _int_or_string(raw)
        elif kind in ("map", "bmap"):
            key, value = _entry(raw)
            text = base64.b64encode(value).decode() if kind == "bmap" else value.decode()
            out.setdefault(name, {})[key] = text
    return {k: v for k, v in out.items() if not _empty(k, v)}


def decode_protobuf(raw: bytes) -> dict[str, Any]:
    """Decode a `k8s\\0`-prefixed `runtime.Unknown` envelope into a JSON object."""
    if not raw.startswith(MAGIC):
        raise ApiError.bad_request("the protobuf body does not start with the Kubernetes magic number")
    envelope = {"typeMeta": b"", "raw": b""}
    for number, value in _fields(raw[len(MAGIC) :]):
        if isinstance(value, bytes) and number in (1, 2):
            envelope["typeMeta" if number == 1 else "raw"] = value
    type_meta = {1: "", 2: ""}
    for number, value in _fields(envelope["typeMeta"]):
        if isinstance(value, bytes):
            type_meta[number] = value.decode()
    api_version, kind = type_meta[1], type_meta[2]
    schema = KINDS.get(kind)
    if schema is None:
        raise ApiError.unsupported_media_type(PROTOBUF, ["application/json", "application/yaml"])
    return {"apiVersion": api_version, "kind": kind, **decode_message(envelope["raw"], schema)}
