"""RBAC authorisation over the stored Roles, ClusterRoles and their bindings, as kube-apiserver's RBAC authoriser.

`RbacAuthorizer.allows(attrs)` is the decision for one request; `rules_for()` lists the rules a user holds in a
namespace (SelfSubjectRulesReview). Members of `system:masters` are allowed everything before RBAC is asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .authn import MASTERS, UserInfo
from .requestinfo import Attributes
from .resourcetypes import RBAC_GROUP
from .store import ObjectStore

Json = dict[str, Any]
ROLES = (RBAC_GROUP, "roles")
ROLE_BINDINGS = (RBAC_GROUP, "rolebindings")
CLUSTER_ROLES = (RBAC_GROUP, "clusterroles")
CLUSTER_ROLE_BINDINGS = (RBAC_GROUP, "clusterrolebindings")


def _has(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and ("*" in values or wanted in values)


def _resource_matches(rule: Json, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for item in rule.get("resources") or []:
        if item in ("*", combined):
            return True
        if subresource and item == f"*/{subresource}":
            return True
    return False


def _url_matches(rule: Json, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or []:
        if url == "*" or url == path or (url.endswith("*") and path.startswith(url[:-1])):
            return True
    return False


def rule_allows(rule: Json, attrs: Attributes) -> bool:
    """Does one PolicyRule allow the request (verbs, groups, resources, names, or non-resource URLs)?"""
    if not isinstance(rule, dict) or not _has(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule, attrs.path)
    if not _has(rule.get("apiGroups"), attrs.api_group):
        return False
    if not _resource_matches(rule, attrs.resource, attrs.subresource):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def subject_matches(subject: Any, user: UserInfo, binding_namespace: str) -> bool:
    if not isinstance(subject, dict):
        return False
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == user.username)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return bool(user.username == f"system:serviceaccount:{namespace}:{name}")
    return False


class RbacAuthorizer:
    """Evaluates requests against the RBAC objects in one `ObjectStore`."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def _role_rules(self, ref: Any, namespace: str) -> list[Json]:
        if not isinstance(ref, dict):
            return []
        if ref.get("kind") == "ClusterRole":
            role = self.store.get(CLUSTER_ROLES, "", str(ref.get("name", "")))
        elif ref.get("kind") == "Role" and namespace:
            role = self.store.get(ROLES, namespace, str(ref.get("name", "")))
        else:
            role = None
        return list((role or {}).get("rules") or [])

    def _bindings(self, user: UserInfo, namespace: str) -> Iterator[tuple[Json, str]]:
        """(binding, namespace of its rules) for every binding that names the user; cluster ones first."""
        for binding in self.store.items(CLUSTER_ROLE_BINDINGS):
            if any(subject_matches(s, user, "") for s in binding.get("subjects") or []):
                yield binding, ""
        if namespace:
            for binding in self.store.items(ROLE_BINDINGS, namespace):
                if any(subject_matches(s, user, namespace) for s in binding.get("subjects") or []):
                    yield binding, namespace

    def rules_for(self, user: UserInfo, namespace: str) -> list[Json]:
        """Every rule the user holds in `namespace` (cluster-wide ones included)."""
        rules: list[Json] = []
        for binding, where in self._bindings(user, namespace):
            rules += self._role_rules(binding.get("roleRef"), where)
        return rules

    def allows(self, attrs: Attributes) -> bool:
        if MASTERS in attrs.user.groups:
            return True
        namespace = attrs.namespace if attrs.resource_request else ""
        for binding, where in self._bindings(attrs.user, namespace):
            if any(rule_allows(rule, attrs) for rule in self._role_rules(binding.get("roleRef"), where)):
                return True
        return False
