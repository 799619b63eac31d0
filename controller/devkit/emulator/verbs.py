"""The emulated cluster's API verbs: get, list, create, update, patch, delete, scale, apply_crd.

`Cluster` is what the HTTP layer (`endpoints.py`) and in-process callers use. Every method runs on
the server's event loop, synchronously, so each write and the watch fan-out it causes are atomic.
Writes also come in steps (`*_request` → `prepare_*` → `finish`) so admission webhooks can run between.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from .apierrors import ApiError, FieldError
from .lifecycle import CRDS, NAMESPACES, Lifecycle
from .objectmeta import generate_name
from .patching import PatchError, json_patch, merge_patch, strategic_merge
from .preparing import WriteOptions, admit, check_identity, clone
from .resourcetypes import ResourceType
from .selectors import Selector

Json = dict[str, Any]
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE, STRATEGIC, APPLY)
_SCALE_META = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")


@dataclass(frozen=True)
class PendingWrite:
    """An admitted object waiting to be stored, with the version it replaces (None for a create)."""

    rt: ResourceType
    new: Json
    old: Json | None
    opts: WriteOptions


class StaleWrite(ApiError):
    """The object changed between admission and commit (webhooks ran in between); the write is re-run."""

    def __init__(self, group: str, plural: str, name: str) -> None:
        error = ApiError.conflict(group, plural, name)
        super().__init__(error.code, error.reason, error.message, error.details)


class Cluster(Lifecycle):
    """All objects of one emulated cluster, with the real API server's write semantics.

    Call it on the server's loop (`EmulatorServer.call()` from other threads). Write methods take
    ownership of the body they are given and may modify it.
    """

    def __init__(self, history_size: int = 10_000) -> None:
        super().__init__(history_size)
        ns_rt = self.rt_for_key(NAMESPACES)
        assert ns_rt is not None
        for name in ("default", "kube-system"):
            self.create(ns_rt, None, {"metadata": {"name": name}}, WriteOptions())

    def _versions_of(self, rt: ResourceType) -> set[str]:
        return {r.api_version for r in self.registry if r.key == rt.key}

    def _target_namespace(self, rt: ResourceType, namespace: str | None, meta: Json) -> str:
        if not rt.namespaced:
            meta.pop("namespace", None)
            return ""
        body_ns = meta.get("namespace")
        if body_ns and namespace and body_ns != namespace:
            raise ApiError.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        target = namespace or body_ns
        if not target:
            raise ApiError.bad_request("the namespace of the object is required")
        meta["namespace"] = target
        return str(target)

    def _body(self, rt: ResourceType, body: Any) -> Json:
        if not isinstance(body, dict):
            raise ApiError.bad_request(f"the body of the request must be a {rt.kind} object")
        check_identity(rt, body, self._versions_of(rt))
        if not isinstance(body.setdefault("metadata", {}), dict):
            raise ApiError.bad_request("Object 'metadata' is missing or not an object")
        return body

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Json:
        return self.render(self.require(rt, namespace or "", name), rt)

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: Selector | None = None,
        fields: Selector | None = None,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> Json:
        """A `<Kind>List`, filtered and paginated like the real server (sorted by namespace, name)."""
        items = self.store.items(rt.key, namespace if rt.namespaced else None)
        if continue_token:
            try:
                start = tuple(json.loads(base64.b64decode(continue_token))["start"])
            except (ValueError, KeyError, TypeError, binascii.Error) as e:
                raise ApiError.bad_request("continue key is not valid: incorrect encoded start key") from e
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
        if labels or fields:
            items = [o for o in items if (not labels or labels.matches(o)) and (not fields or fields.matches(o))]
        meta: Json = {"resourceVersion": str(self.store.rv)}
        if limit > 0 and len(items) > limit:
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
            last = items[-1]["metadata"]
            token = {"rv": self.store.rv, "start": [last.get("namespace", ""), last["name"]]}
            meta["continue"] = base64.b64encode(json.dumps(token).encode()).decode()
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": [self.render(o, rt) for o in items],
        }

    def _check_namespace_open(self, rt: ResourceType, namespace: str, name: str) -> None:
        ns_obj = self.store.get(NAMESPACES, "", namespace)
        if ns_obj is None:
            raise ApiError.not_found("", "namespaces", namespace)
        if ns_obj["metadata"].get("deletionTimestamp"):
            message = f"unable to create new content in namespace {namespace} because it is being terminated"
            raise ApiError.forbidden(
                f'{rt.plural} "{name}" is forbidden: {message}',
                {
                    "name": name,
                    "group": rt.group,
                    "kind": rt.plural,
                    "causes": [{"reason": "NamespaceTerminating", "message": message, "field": "metadata.namespace"}],
                },
            )

    def create_request(self, rt: ResourceType, namespace: str | None, body: Any) -> Json:
        """The object a create asks for, checked for kind and namespace (what mutating webhooks see)."""
        checked = self._body(rt, body)
        self._target_namespace(rt, namespace, checked["metadata"])
        return checked

    def prepare_create(self, rt: ResourceType, body: Json, opts: WriteOptions) -> PendingWrite:
        """Name, namespace and existence checks, then admission; nothing is stored yet."""
        meta = body["metadata"]
        target = str(meta.get("namespace") or "") if rt.namespaced else ""
        crd = self.crd_of(rt)
        if crd is not None and crd["metadata"].get("deletionTimestamp"):
            raise ApiError(
                405, "MethodNotAllowed", "create not allowed while custom resource definition is terminating"
            )
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise ApiError.invalid(
                    rt.group,
                    rt.kind,
                    "",
                    [FieldError("FieldValueRequired", "metadata.name", "name or generateName is required")],
                )
            meta["name"] = generate_name(str(prefix))
            while self.store.get(rt.key, target, meta["name"]) is not None:
                meta["name"] = generate_name(str(prefix))
        if rt.namespaced:
            self._check_namespace_open(rt, target, meta["name"])
        if self.store.get(rt.key, target, meta["name"]) is not None:
            raise ApiError.already_exists(rt.group, rt.plural, meta["name"])
        return PendingWrite(rt, admit(rt, body, None, opts), None, opts)

    def finish(self, pending: PendingWrite) -> Json:
        """Store a prepared write (or only render it on a dry run); a write raced by another is `StaleWrite`."""
        rt, new, old = pending.rt, pending.new, pending.old
        if pending.opts.dry_run:
            return self.render(new, rt)
        meta = new["metadata"]
        current = self.store.get(rt.key, meta.get("namespace", "") if rt.namespaced else "", meta["name"])
        if old is None and current is not None:
            raise ApiError.already_exists(rt.group, rt.plural, meta["name"])
        if old is not None and current is not old:
            raise StaleWrite(rt.group, rt.plural, meta["name"])
        return self.commit(rt, new, old)

    def create(self, rt: ResourceType, namespace: str | None, body: Any, opts: WriteOptions) -> Json:
        return self.finish(self.prepare_create(rt, self.create_request(rt, namespace, body), opts))

    def _check_rv(self, rt: ResourceType, name: str, given: Any, old: Json, required: bool) -> None:
        current = old["metadata"].get("resourceVersion")
        if given:
            if str(given) != current:
                raise ApiError.conflict(rt.group, rt.plural, name)
        elif required:
            raise ApiError.invalid(
                rt.group,
                rt.kind,
                name,
                [FieldError("FieldValueInvalid", "metadata.resourceVersion", "must be specified for an update", 0)],
            )

    def prepare_write(self, rt: ResourceType, name: str, new: Json, old: Json, opts: WriteOptions) -> PendingWrite:
        """Admission of an update or patch result against `old`; nothing is stored yet."""
        meta = new["metadata"]
        if meta.get("name", name) != name:
            raise ApiError.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        self._target_namespace(rt, old["metadata"].get("namespace"), meta)
        return PendingWrite(rt, admit(rt, new, old, opts), old, opts)

    def _write(self, rt: ResourceType, name: str, new: Json, old: Json, opts: WriteOptions) -> Json:
        return self.finish(self.prepare_write(rt, name, new, old, opts))

    def update_request(self, rt: ResourceType, namespace: str | None, name: str, body: Any) -> tuple[Json, Json]:
        """(stored object, replacement) for a PUT; a stale resourceVersion is a 409."""
        old = self.require(rt, namespace or "", name)
        body = self._body(rt, body)
        self._check_rv(rt, name, body["metadata"].get("resourceVersion"), old, required=rt.custom)
        return old, body

    def update(self, rt: ResourceType, namespace: str | None, name: str, body: Any, opts: WriteOptions) -> Json:
        """PUT: replace the object (or only its status); a stale resourceVersion is a 409."""
        old, body = self.update_request(rt, namespace, name, body)
        return self._write(rt, name, body, old, opts)

    def patch_request(
        self, rt: ResourceType, namespace: str | None, name: str, patch_type: str, patch: Any
    ) -> tuple[Json | None, Json]:
        """(stored object, patched result); (None, body) when an apply patch creates the object."""
        old = self.store.get(rt.key, (namespace or "") if rt.namespaced else "", name)
        if old is None:
            if patch_type != APPLY:
                raise ApiError.not_found(rt.group, rt.plural, name)
            body = self._body(rt, patch)
            if body["metadata"].get("name", name) != name:
                raise ApiError.bad_request(
                    f"the name of the object ({body['metadata']['name']}) does not match the name on the URL ({name})"
                )
            body["metadata"]["name"] = name
            return None, body
        base = clone(self.render(old, rt))
        try:
            if patch_type == JSON_PATCH:
                merged = json_patch(base, patch)
            elif patch_type == MERGE:
                merged = merge_patch(base, patch)
            elif rt.custom and patch_type == STRATEGIC:
                raise ApiError.unsupported_media_type(patch_type, [JSON_PATCH, MERGE, APPLY])
            elif patch_type == APPLY:
                self._body(rt, patch)
                merged = merge_patch(base, patch) if rt.custom else strategic_merge(base, patch)
            else:
                merged = strategic_merge(base, patch)
        except PatchError as e:
            raise ApiError.unprocessable(str(e)) from e
        if not isinstance(merged, dict) or not isinstance(merged.get("metadata"), dict):
            raise ApiError.unprocessable("the patched object is not a valid object")
        self._check_rv(rt, name, merged["metadata"].get("resourceVersion"), old, required=False)
        return old, merged

    def patch(
        self, rt: ResourceType, namespace: str | None, name: str, patch_type: str, patch: Any, opts: WriteOptions
    ) -> tuple[Json, bool]:
        """PATCH in any of the four formats; returns (object, created) — apply may create."""
        old, merged = self.patch_request(rt, namespace, name, patch_type, patch)
        if old is None:
            return self.create(rt, namespace, merged, opts), True
        return self._write(rt, name, merged, old, opts), False

    def delete(
        self, rt: ResourceType, namespace: str | None, name: str, options: Json, opts: WriteOptions
    ) -> tuple[Json, bool]:
        """DELETE honouring preconditions and finalizers; returns (object, removed)."""
        old = self.require(rt, namespace or "", name)
        preconditions = options.get("preconditions") or {}
        meta = old["metadata"]
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = preconditions.get(field)
            if wanted and wanted != meta.get(field):
                raise ApiError.conflict(
                    rt.group,
                    rt.plural,
                    name,
                    f"Precondition failed: {label} in precondition: {wanted}, "
                    f"{label} in object meta: {meta.get(field)}",
                )
        if opts.dry_run:
            return self.render(old, rt), False
        orphan = options.get("propagationPolicy") == "Orphan" or options.get("orphanDependents") is True
        return self.delete_object(rt, old, orphan)

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: Selector | None,
        fields: Selector | None,
        opts: WriteOptions,
    ) -> Json:
        listing = self.list(rt, namespace, labels, fields)
        for obj in listing["items"]:
            current = self.store.get(rt.key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            if current is not None and not opts.dry_run:
                self.delete_object(rt, current)
        return listing

    def _scale_paths(self, rt: ResourceType) -> tuple[str, str, str]:
        scale = rt.extra.get("scale") or {}
        return (
            scale.get("specReplicasPath", ".spec.replicas"),
            scale.get("statusReplicasPath", ".status.replicas"),
            scale.get("labelSelectorPath", ""),
        )

    def get_scale(self, rt: ResourceType, namespace: str | None, name: str) -> Json:
        """The `autoscaling/v1` Scale view of a Deployment or a CR with a scale subresource."""
        obj = self.require(rt, namespace or "", name)
        spec_path, status_path, selector_path = self._scale_paths(rt)
        meta = obj["metadata"]
        selector = ""
        if rt.key == ("apps", "deployments"):
            labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        elif selector_path:
            selector = str(_dig(obj, selector_path) or "")
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in _SCALE_META if k in meta},
            "spec": {"replicas": _dig(obj, spec_path) or 0},
            "status": {"replicas": _dig(obj, status_path) or 0, "selector": selector},
        }

    def update_scale(self, rt: ResourceType, namespace: str | None, name: str, scale: Any, opts: WriteOptions) -> Json:
        old = self.require(rt, namespace or "", name)
        if not isinstance(scale, dict):
            raise ApiError.bad_request("the body of the request must be a Scale object")
        self._check_rv(rt, name, (scale.get("metadata") or {}).get("resourceVersion"), old, required=False)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError.invalid(
                "autoscaling",
                "Scale",
                name,
                [FieldError("FieldValueInvalid", "spec.replicas", "must be greater than or equal to 0", replicas)],
            )
        new = clone(self.render(old, rt))
        target = new
        parts = self._scale_paths(rt)[0].strip(".").split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = replicas
        main = WriteOptions(None, opts.field_validation, opts.dry_run, opts.warnings)
        self._write(rt, name, new, old, main)
        return self.get_scale(rt, namespace, name)

    def apply_crd(self, crd: Json) -> Json:
        """Create or replace a CustomResourceDefinition; its resources are served at once."""
        crd_rt = self.rt_for_key(CRDS)
        assert crd_rt is not None
        body = clone(crd)
        name = (body.get("metadata") or {}).get("name", "")
        old = self.store.get(CRDS, "", name)
        if old is None:
            return self.create(crd_rt, None, body, WriteOptions())
        body["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        return self.update(crd_rt, None, name, body, WriteOptions())


def _dig(obj: Json, path: str) -> Any:
    current: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current
