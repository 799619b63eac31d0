"""Object lifecycle: committing versions, deletion with finalizers, and the cleanup controllers.

`Lifecycle` is the base of `Cluster`: it owns the registry and the store, commits admitted objects
(skipping no-op updates, removing objects whose last finalizer went away), and emulates what
kube-controller-manager would do synchronously: namespace and CRD cleanup and ownerReference GC.
"""

from __future__ import annotations

from typing import Any

from .apierrors import ApiError
from .objectmeta import now_rfc3339
from .preparing import clone
from .rbacdefaults import aggregated_rules
from .resourcetypes import CRD_CLEANUP_FINALIZER, CRD_GROUP, CRD_PLURAL, RBAC_GROUP, ResourceRegistry, ResourceType
from .store import Key, ObjectStore

Json = dict[str, Any]
NAMESPACES: Key = ("", "namespaces")
CRDS: Key = (CRD_GROUP, CRD_PLURAL)
CLUSTER_ROLES: Key = (RBAC_GROUP, "clusterroles")


class Lifecycle:
    """Registry + store + the rules for how object versions come and go."""

    def __init__(self, history_size: int = 10_000) -> None:
        self.registry = ResourceRegistry()
        self.store = ObjectStore(history_size)

    def render(self, obj: Json, rt: ResourceType) -> Json:
        """The object as seen through `rt`'s version (same storage, other apiVersion)."""
        if obj.get("apiVersion") == rt.api_version:
            return obj
        return {**obj, "apiVersion": rt.api_version}

    def rt_for_key(self, key: Key) -> ResourceType | None:
        return self.registry.storage_version(*key)

    def require(self, rt: ResourceType, namespace: str, name: str) -> Json:
        obj = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        if obj is None:
            raise ApiError.not_found(rt.group, rt.plural, name)
        return obj

    def crd_of(self, rt: ResourceType) -> Json | None:
        return self.store.get(CRDS, "", rt.crd_name) if rt.custom else None

    @staticmethod
    def _pending_finalizers(rt: ResourceType, obj: Json) -> bool:
        if (obj.get("metadata") or {}).get("finalizers"):
            return True
        return rt.key == NAMESPACES and bool((obj.get("spec") or {}).get("finalizers"))

    def commit(self, rt: ResourceType, new: Json, old: Json | None) -> Json:
        """Store an admitted object; a no-op update keeps the old version and emits nothing."""
        meta = new["metadata"]
        storage = self.rt_for_key(rt.key) or rt
        new["apiVersion"] = storage.api_version
        if old is not None:
            meta["resourceVersion"] = old["metadata"].get("resourceVersion")
            if new == old:
                return self.render(old, rt)
        meta["resourceVersion"] = str(self.store.next_rv())
        namespace = meta.get("namespace", "") if rt.namespaced else ""
        if old is not None and meta.get("deletionTimestamp") and not self._pending_finalizers(rt, new):
            self.store.remove(rt.key, namespace, meta["name"], new)
            self._after_remove(rt, new, orphan=False)
        else:
            self.store.put(rt.key, namespace, meta["name"], new, old)
            if rt.key == CRDS:
                self.registry.register_crd(new)
        if rt.key == CLUSTER_ROLES:
            self._aggregate_cluster_roles(rt)
        return self.render(new, rt)

    def delete_object(self, rt: ResourceType, old: Json, orphan: bool = False) -> tuple[Json, bool]:
        """Delete now, or mark for deletion when finalizers are pending; returns (object, removed)."""
        meta = old["metadata"]
        if meta.get("deletionTimestamp"):
            return self.render(old, rt), False
        if self._pending_finalizers(rt, old):
            new = clone(old)
            new_meta = new["metadata"]
            new_meta["deletionTimestamp"] = now_rfc3339()
            new_meta["deletionGracePeriodSeconds"] = 0
            if "generation" in new_meta:
                new_meta["generation"] = int(new_meta["generation"]) + 1
            if rt.key == NAMESPACES:
                new.setdefault("status", {})["phase"] = "Terminating"
            result = self.commit(rt, new, old)
            if rt.key == NAMESPACES:
                self._empty_namespace(meta["name"])
            elif rt.key == CRDS:
                self._empty_crd(new)
            return result, False
        final = {**old, "metadata": {**meta, "resourceVersion": str(self.store.next_rv())}}
        self.store.remove(rt.key, meta.get("namespace", "") if rt.namespaced else "", meta["name"], final)
        self._after_remove(rt, final, orphan)
        return self.render(final, rt), True

    def _aggregate_cluster_roles(self, rt: ResourceType) -> None:
        """What the clusterrole-aggregation controller does: aggregated roles get the selected roles' rules."""
        roles = self.store.items(CLUSTER_ROLES)
        for role in roles:
            rules = aggregated_rules(role, roles)
            if rules is not None and rules != (role.get("rules") or []):
                self.commit(rt, {**clone(role), "rules": rules}, role)

    def _after_remove(self, rt: ResourceType, final: Json, orphan: bool) -> None:
        meta = final["metadata"]
        if rt.key == CLUSTER_ROLES:
            self._aggregate_cluster_roles(rt)
        if rt.key == CRDS:
            crd_key = (final["spec"]["group"], final["spec"]["names"]["plural"])
            self.registry.unregister_crd(meta["name"])
            self.store.close_subscribers(crd_key)
            for leftover in self.store.items(crd_key):
                lm = leftover["metadata"]
                self.store.next_rv()
                self.store.remove(crd_key, lm.get("namespace", ""), lm["name"], leftover)
        if rt.namespaced:
            self._maybe_finish_namespace(meta.get("namespace", ""))
        if rt.custom:
            self._maybe_finish_crd(rt.crd_name)
        self._collect_garbage(meta.get("uid", ""), orphan)

    def _empty_namespace(self, namespace: str) -> None:
        for key, obj in list(self.store.in_namespace(namespace)):
            rt = self.rt_for_key(key)
            if rt is not None and self.store.get(key, namespace, obj["metadata"]["name"]) is not None:
                self.delete_object(rt, obj)
        self._maybe_finish_namespace(namespace)

    def _maybe_finish_namespace(self, namespace: str) -> None:
        ns_obj = self.store.get(NAMESPACES, "", namespace)
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        if not self.store.namespace_is_empty(namespace):
            return
        ns_rt = self.rt_for_key(NAMESPACES)
        assert ns_rt is not None
        new = clone(ns_obj)
        spec = new.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != "kubernetes"]
        self.commit(ns_rt, new, ns_obj)

    def _empty_crd(self, crd: Json) -> None:
        key = (crd["spec"]["group"], crd["spec"]["names"]["plural"])
        rt = self.rt_for_key(key)
        if rt is not None:
            for obj in self.store.items(key):
                current = self.store.get(key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                if current is not None:
                    self.delete_object(rt, current)
        self._maybe_finish_crd(crd["metadata"]["name"])

    def _maybe_finish_crd(self, name: str) -> None:
        crd = self.store.get(CRDS, "", name)
        if crd is None or not crd["metadata"].get("deletionTimestamp"):
            return
        if self.store.has_items((crd["spec"]["group"], crd["spec"]["names"]["plural"])):
            return
        crd_rt = self.rt_for_key(CRDS)
        assert crd_rt is not None
        new = clone(crd)
        finalizers = [f for f in new["metadata"].get("finalizers") or [] if f != CRD_CLEANUP_FINALIZER]
        new["metadata"]["finalizers"] = finalizers
        self.commit(crd_rt, new, crd)

    def _collect_garbage(self, uid: str, orphan: bool) -> None:
        """Delete dependents whose last owner is gone (or drop the reference when orphaning)."""
        for key, dependent in self.store.dependents(uid):
            rt = self.rt_for_key(key)
            if rt is None:
                continue
            refs = dependent["metadata"].get("ownerReferences") or []
            remaining = [r for r in refs if r.get("uid") != uid]
            if orphan or any(self.store.find_uid(r.get("uid", "")) for r in remaining):
                new = clone(dependent)
                new["metadata"]["ownerReferences"] = remaining
                if not remaining:
                    del new["metadata"]["ownerReferences"]
                self.commit(rt, new, dependent)
            else:
                self.delete_object(rt, dependent)
