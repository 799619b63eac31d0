"""The default RBAC policy kube-apiserver bootstraps, and ClusterRole aggregation by label.

`default_policy()` is the subset of the real bootstrap roles the emulator seeds in auth mode: cluster-admin
(bound to `system:masters`), system:discovery, system:basic-user, system:public-info-viewer and the aggregated
admin/edit/view roles. `aggregated_rules()` is what the clusterrole-aggregation controller writes into a role.
"""

from __future__ import annotations

from typing import Any

from .authn import AUTHENTICATED, MASTERS, UNAUTHENTICATED
from .resourcetypes import RBAC_GROUP
from .selectors import from_label_selector

Json = dict[str, Any]
API_VERSION = f"{RBAC_GROUP}/v1"
BOOTSTRAP = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_CORE = ["configmaps", "endpoints", "persistentvolumeclaims", "pods", "replicationcontrollers", "secrets", "services"]
_CORE_VIEW = [r for r in _CORE if r != "secrets"] + ["events", "pods/log", "pods/status", "serviceaccounts"]


def _role(name: str, rules: list[Json], labels: dict[str, str] | None = None, **extra: Any) -> Json:
    meta = {"name": name, "labels": {**BOOTSTRAP, **(labels or {})}, "annotations": dict(AUTOUPDATE)}
    return {"apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": meta, "rules": rules, **extra}


def _binding(name: str, role: str, groups: list[str]) -> Json:
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": dict(BOOTSTRAP), "annotations": dict(AUTOUPDATE)},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups],
    }


def _aggregated(name: str, label: str) -> Json:
    selector = {"matchLabels": {f"rbac.authorization.k8s.io/aggregate-to-{label}": "true"}}
    return _role(name, [], aggregationRule={"clusterRoleSelectors": [selector]})


def default_policy() -> tuple[list[Json], list[Json]]:
    """(ClusterRoles, ClusterRoleBindings) seeded when authorisation is on."""
    to = "rbac.authorization.k8s.io/aggregate-to-"
    roles = [
        _role(
            "cluster-admin",
            [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ],
        ),
        _role(
            "system:discovery",
            [
                {
                    "nonResourceURLs": [
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                    "verbs": ["get"],
                }
            ],
        ),
        _role(
            "system:basic-user",
            [
                {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"], "verbs": ["create"]},
                {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectrulesreviews"], "verbs": ["create"]},
                {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
            ],
        ),
        _role(
            "system:public-info-viewer",
            [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}],
        ),
        _aggregated("admin", "admin"),
        _aggregated("edit", "edit"),
        _aggregated("view", "view"),
        _role(
            "system:aggregate-to-view",
            [
                {"apiGroups": [""], "resources": _CORE_VIEW, "verbs": _READ},
                {"apiGroups": ["apps"], "resources": ["deployments", "deployments/status"], "verbs": _READ},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": _READ},
            ],
            {f"{to}admin": "true", f"{to}edit": "true", f"{to}view": "true"},
        ),
        _role(
            "system:aggregate-to-edit",
            [
                {"apiGroups": [""], "resources": [*_CORE, "serviceaccounts"], "verbs": _WRITE},
                {"apiGroups": [""], "resources": ["secrets"], "verbs": _READ},
                {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"], "verbs": _WRITE},
                {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
            ],
            {f"{to}admin": "true", f"{to}edit": "true"},
        ),
        _role(
            "system:aggregate-to-admin",
            [
                {"apiGroups": [RBAC_GROUP], "resources": ["roles", "rolebindings"], "verbs": _READ + _WRITE},
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["localsubjectaccessreviews"],
                    "verbs": ["create"],
                },
            ],
            {f"{to}admin": "true"},
        ),
    ]
    bindings = [
        _binding("cluster-admin", "cluster-admin", [MASTERS]),
        _binding("system:discovery", "system:discovery", [AUTHENTICATED]),
        _binding("system:basic-user", "system:basic-user", [AUTHENTICATED]),
        _binding("system:public-info-viewer", "system:public-info-viewer", [AUTHENTICATED, UNAUTHENTICATED]),
    ]
    return roles, bindings


def aggregated_rules(role: Json, all_roles: list[Json]) -> list[Json] | None:
    """The rules the aggregation controller gives `role`, or None when it has no aggregationRule."""
    rule = role.get("aggregationRule")
    if not isinstance(rule, dict):
        return None
    selectors = [from_label_selector(s) for s in rule.get("clusterRoleSelectors") or []]
    name = role["metadata"]["name"]
    rules: list[Json] = []
    for other in sorted(all_roles, key=lambda r: str(r["metadata"]["name"])):
        if other["metadata"]["name"] == name or not any(s.matches(other) for s in selectors):
            continue
        for candidate in other.get("rules") or []:
            if candidate not in rules:
                rules.append(candidate)
    return rules
