"""Documents that describe the API, served by `endpoints.py`: discovery and a minimal OpenAPI v3.

Built from the `ResourceRegistry` per request, so a CRD applied a moment ago is listed at once. The
OpenAPI v3 tells kubectl that `fieldValidation` is supported (no protobuf `/openapi/v2` needed) and
feeds `kubectl explain`; built-ins get paths but no schemas, so kubectl keeps its own patch metadata.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import platform
from typing import Any

from .resourcetypes import SUBRESOURCE_VERBS, ResourceRegistry, ResourceType

Json = dict[str, Any]
KUBE_VERSION = ("1", "32")
_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "": "amd64"}


def version_info() -> Json:
    major, minor = KUBE_VERSION
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{major}.{minor}.0-ringpilot-emulator",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": f"{platform.system().lower()}/{_ARCHES.get(platform.machine(), platform.machine())}",
    }


def _hash(rt: ResourceType) -> str:
    digest = hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def api_resource(rt: ResourceType) -> list[Json]:
    """The APIResource entry for `rt`, followed by one entry per subresource."""
    entry: Json = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
        "storageVersionHash": _hash(rt),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    entries = [entry]
    for sub in sorted(rt.subresources):
        kind = rt.kind
        extra: Json = {}
        verbs = list(SUBRESOURCE_VERBS)
        if sub == "scale":
            kind, extra = "Scale", {"group": "autoscaling", "version": "v1"}
        elif sub == "token":
            kind, extra, verbs = "TokenRequest", {"group": "authentication.k8s.io", "version": "v1"}, ["create"]
        entries.append(
            {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": kind,
                "verbs": verbs,
                **extra,
            }
        )
    return entries


def resource_list(registry: ResourceRegistry, group: str, version: str) -> Json | None:
    resources = registry.in_group_version(group, version)
    if not resources:
        return None
    entries = [e for rt in sorted(resources, key=lambda r: r.plural) for e in api_resource(rt)]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


def api_versions(server_address: str) -> Json:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str, versions: list[str]) -> Json:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group(registry: ResourceRegistry, name: str) -> Json | None:
    versions = registry.group_versions().get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def api_group_list(registry: ResourceRegistry) -> Json:
    groups = registry.group_versions()
    builtin_order = ["apps", "events.k8s.io", "apiextensions.k8s.io", "coordination.k8s.io"]
    names = [g for g in builtin_order if g in groups]
    names += sorted(g for g in groups if g and g not in builtin_order)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(n, groups[n]) for n in names]}


OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
_ITEM_VERBS = (("get", "get", "read"), ("put", "put", "replace"), ("patch", "patch", "patch"))
_META_FIELDS = {
    "name": "Name must be unique within a namespace.",
    "generateName": "GenerateName is an optional prefix, used by the server, to generate a unique name.",
    "namespace": "Namespace defines the space within which each name must be unique.",
    "labels": "Map of string keys and values that can be used to organize and categorize objects.",
    "annotations": "Annotations is an unstructured key value map stored with a resource.",
    "finalizers": "Must be empty before the object is deleted from the registry.",
    "uid": "UID is the unique in time and space value for this object.",
    "resourceVersion": "An opaque value that represents the internal version of this object.",
    "generation": "A sequence number representing a specific generation of the desired state.",
    "creationTimestamp": "The server time when this object was created.",
    "deletionTimestamp": "The RFC 3339 date and time at which this resource will be deleted.",
}


def _schema_name(rt: ResourceType, kind: str) -> str:
    reversed_group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{reversed_group}.{rt.version}.{kind}"


def _gvk(rt: ResourceType) -> Json:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _object_meta() -> Json:
    props: Json = {}
    for name, description in _META_FIELDS.items():
        kind = {"labels": "object", "annotations": "object", "finalizers": "array", "generation": "integer"}
        prop: Json = {"type": kind.get(name, "string"), "description": description}
        if prop["type"] == "object":
            prop["additionalProperties"] = {"type": "string", "default": ""}
        elif prop["type"] == "array":
            prop["items"] = {"type": "string", "default": ""}
        props[name] = prop
    return {
        "description": "ObjectMeta is metadata that all persisted resources must have.",
        "type": "object",
        "properties": props,
    }


def _kind_schema(rt: ResourceType) -> Json:
    schema: Json = copy.deepcopy(rt.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this representation of an object.",
    }
    props["kind"] = {
        "type": "string",
        "description": "Kind is a string value representing the REST resource this object represents.",
    }
    props["metadata"] = {
        "description": "Standard object's metadata.",
        "default": {},
        "allOf": [{"$ref": f"#/components/schemas/{OBJECT_META}"}],
    }
    schema.setdefault("type", "object")
    schema["x-kubernetes-group-version-kind"] = [_gvk(rt)]
    return schema


def _operation(rt: ResourceType, action: str, op_id: str, ref: str | None) -> Json:
    params = [{"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}} for p in _QUERY_PARAMS]
    content = {"application/json": {"schema": {"$ref": ref}}} if ref else {"application/json": {"schema": {}}}
    op: Json = {
        "operationId": op_id,
        "tags": [f"{rt.group or 'core'}_{rt.version}"],
        "parameters": params if action in ("post", "put", "patch") else [],
        "responses": {"200": {"description": "OK", "content": content}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rt),
    }
    if action in ("post", "put", "patch"):
        op["requestBody"] = {"content": content}
    return op


def _paths(rt: ResourceType, ref: str | None) -> Json:
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else "/api/v1"
    base = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
    scope = "Namespaced" if rt.namespaced else ""
    paths: Json = {
        base: {
            "get": _operation(rt, "list", f"list{scope}{rt.kind}", None),
            "post": _operation(rt, "post", f"create{scope}{rt.kind}", ref),
        },
        f"{base}/{{name}}": {
            verb: _operation(rt, action, f"{name}{scope}{rt.kind}", ref)
            for verb, action, name in (*_ITEM_VERBS, ("delete", "delete", "delete"))
        },
    }
    for sub in sorted(rt.subresources):
        suffix = sub.capitalize()
        paths[f"{base}/{{name}}/{sub}"] = {
            verb: _operation(rt, action, f"{name}{scope}{rt.kind}{suffix}", ref if sub == "status" else None)
            for verb, action, name in _ITEM_VERBS
        }
    return paths


def openapi_group_version(registry: ResourceRegistry, group: str, version: str) -> Json | None:
    """The OpenAPI v3 document for one group/version, or None when it is not served."""
    resources = registry.in_group_version(group, version)
    if not resources:
        return None
    schemas: Json = {}
    paths: Json = {}
    for rt in sorted(resources, key=lambda r: r.plural):
        ref = None
        if rt.custom:
            name = _schema_name(rt, rt.kind)
            schemas[name] = _kind_schema(rt)
            ref = f"#/components/schemas/{name}"
        paths.update(_paths(rt, ref))
    if schemas:
        schemas[OBJECT_META] = _object_meta()
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _digest(doc: Json) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:64].upper()


def openapi_index(registry: ResourceRegistry) -> Json:
    """`/openapi/v3`: one entry per group/version, with a content hash kubectl uses as cache key."""
    paths: Json = {}
    for group, versions in sorted(registry.group_versions().items()):
        for version in versions:
            doc = openapi_group_version(registry, group, version)
            path = f"apis/{group}/{version}" if group else f"api/{version}"
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={_digest(doc or {})}"}
    return {"paths": paths}
