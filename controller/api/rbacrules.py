"""Ringpilot's Kubernetes RBAC, the one source for the dev stack and the chart: ClusterRoles and bindings.

`user_roles()` turns the role table (`ROLE_PERMISSIONS` in policy.py) into `ringpilot-viewer`, `-operator`,
`-publisher`, `-approver` and `-admin` (aggregated: it collects every role labelled for it, and viewer and
admin aggregate into Kubernetes' own view and admin), so the API refuses what a role may not do before any
code runs. `component_roles()` are the least privileges of the controller, the worker and the gateway. No
component may impersonate: the worker creates the chat agent's objects with its own identity, naming the asking
user, and the admission webhook lets it name a user only for an action pending in that user's Conversation;
`role_bindings(policy, namespace)` binds the policy's users and groups and the components' ServiceAccounts.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from controller.api.group import GROUP
from controller.api.policy import ROLE_PERMISSIONS, Permission, Policy, Role

Json = dict[str, Any]
RBAC_GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{RBAC_GROUP}/v1"
READ = ["get", "list", "watch"]
WRITE = ["create", "patch", "update"]
KIND_PLURALS = ("deploymenttasks", "changerequests", "conversations", "assignments", "remediations")
STATUSES = tuple(f"{plural}/status" for plural in KIND_PLURALS)
#: The label a ClusterRole carries to be collected into `ringpilot-admin`.
AGGREGATE_TO_ADMIN = f"{GROUP}/aggregate-to-admin"
_K8S_AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
#: The components' ServiceAccounts (the same names in the chart).
CONTROLLER_ACCOUNT, WORKER_ACCOUNT, GATEWAY_ACCOUNT = "ringpilot-controller", "ringpilot-worker", "ringpilot-gateway"

#: The name of each role's ClusterRole.
ROLE_NAMES: Mapping[Role, str] = MappingProxyType(
    {
        Role.VIEWER: "ringpilot-viewer",
        Role.OPERATOR: "ringpilot-operator",
        Role.PUBLISHER: "ringpilot-publisher",
        Role.CAB_APPROVER: "ringpilot-approver",
        Role.ADMIN: "ringpilot-admin",
    }
)


def _rule(resources: list[str], verbs: list[str], group: str = GROUP) -> Json:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


#: What each permission lets its holder do through the API (everyone may chat: reading includes it).
PERMISSION_RULES: Mapping[Permission, tuple[Json, ...]] = MappingProxyType(
    {
        Permission.READ: (
            _rule([*KIND_PLURALS, *STATUSES], READ),
            _rule(["conversations"], WRITE),
            _rule(["namespaces"], READ, ""),  # the chat agent finds rings and workloads as the asking user
            _rule(["deployments"], READ, "apps"),
        ),
        Permission.DEPLOY: (_rule(["deploymenttasks"], ["create"]),),
        Permission.SUBMIT_CAB: (_rule(["deploymenttasks"], ["create"]),),
        Permission.ROLLBACK: (_rule(["deploymenttasks"], ["create"]),),
        Permission.CANCEL: (_rule(["deploymenttasks"], ["patch", "update"]),),
        Permission.APPROVE: (_rule(["changerequests"], ["patch", "update"]),),
        Permission.REMEDIATE: (_rule(["remediations"], ["create"]),),
        Permission.RESTART: (_rule(["remediations"], ["create"]),),
        Permission.ADMIN: (
            _rule(["assignments"], [*WRITE, "delete"]),
            _rule(list(KIND_PLURALS), ["delete"]),
            _rule(["remediations"], ["patch", "update"]),
        ),
    }
)


def _meta(name: str, labels: dict[str, str] | None = None) -> Json:
    return {"name": name, "labels": {"app.kubernetes.io/part-of": "ringpilot", **(labels or {})}}


def rules_for(permissions: frozenset[Permission]) -> list[Json]:
    """The RBAC rules of a set of permissions, each rule once, in the order of `Permission`."""
    rules: list[Json] = []
    for permission in Permission:
        if permission in permissions:
            rules.extend(rule for rule in PERMISSION_RULES[permission] if rule not in rules)
    return rules


def user_roles() -> list[Json]:
    """The user-facing ClusterRoles, one per role, and the rules role that `ringpilot-admin` aggregates."""
    roles = []
    admin = ROLE_PERMISSIONS[Role.ADMIN]
    for role, name in ROLE_NAMES.items():
        if role is Role.ADMIN:
            continue
        labels = {AGGREGATE_TO_ADMIN: "true"} if ROLE_PERMISSIONS[role] <= admin else {}
        if role is Role.VIEWER:
            labels[f"{_K8S_AGGREGATE}view"] = "true"
        rules = rules_for(ROLE_PERMISSIONS[role])
        roles.append(
            {"apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": _meta(name, labels), "rules": rules}
        )
    own = admin - ROLE_PERMISSIONS[Role.VIEWER] - ROLE_PERMISSIONS[Role.OPERATOR]
    roles.append(
        {
            "apiVersion": API_VERSION,
            "kind": "ClusterRole",
            "metadata": _meta("ringpilot-admin-rules", {AGGREGATE_TO_ADMIN: "true"}),
            "rules": rules_for(own),
        }
    )
    roles.append(
        {
            "apiVersion": API_VERSION,
            "kind": "ClusterRole",
            "metadata": _meta(ROLE_NAMES[Role.ADMIN], {f"{_K8S_AGGREGATE}admin": "true"}),
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {AGGREGATE_TO_ADMIN: "true"}}]},
            "rules": [],
        }
    )
    return roles


def _events() -> list[Json]:
    return [_rule(["events"], ["create", "patch"], ""), _rule(["events"], ["create", "patch"], "events.k8s.io")]


def component_roles() -> list[Json]:
    """Least-privilege ClusterRoles of the controller (Kopf and the engines), the worker and the gateway."""
    controller = [
        _rule(list(KIND_PLURALS), [*READ, "create", "patch", "update"]),
        _rule(list(STATUSES), ["get", "patch", "update"]),
        _rule(["customresourcedefinitions"], ["get", "list", "watch"], "apiextensions.k8s.io"),
        _rule(["namespaces", "pods", "configmaps"], READ, ""),
        _rule(["deployments"], READ, "apps"),
        *_events(),
    ]
    worker = [
        _rule(list(KIND_PLURALS), [*READ, "create", "patch", "update"]),
        _rule(list(STATUSES), ["get", "patch", "update"]),
        _rule(["namespaces", "pods"], READ, ""),
        _rule(["configmaps"], [*READ, *WRITE], ""),
        _rule(["deployments"], [*READ, *WRITE], "apps"),
        *_events(),
    ]
    gateway = [
        _rule(["conversations"], [*READ, *WRITE, "delete"]),  # DELETE /api/v1/conversations/{name}
        _rule(["changerequests"], [*READ, "patch"]),
        _rule([k for k in KIND_PLURALS if k not in ("conversations", "changerequests")], READ),
        _rule(["tokenreviews"], ["create"], "authentication.k8s.io"),
    ]
    return [
        {"apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": _meta(account), "rules": rules}
        for account, rules in ((CONTROLLER_ACCOUNT, controller), (WORKER_ACCOUNT, worker), (GATEWAY_ACCOUNT, gateway))
    ]


def _binding(name: str, role: str, subjects: list[Json]) -> Json:
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterRoleBinding",
        "metadata": _meta(name),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    }


def role_bindings(policy: Policy, namespace: str) -> list[Json]:
    """Bindings of the policy's users and groups to their roles, and of each component's ServiceAccount."""
    bindings = []
    for role, name in ROLE_NAMES.items():
        subjects = [
            {"apiGroup": RBAC_GROUP, "kind": "User", "name": user}
            for user, held in sorted(policy.roles.users.items())
            if held is role
        ]
        subjects += [
            {"apiGroup": RBAC_GROUP, "kind": "Group", "name": group}
            for group, held in sorted(policy.roles.groups.items())
            if held is role
        ]
        if subjects:
            bindings.append(_binding(name, name, subjects))
    for account in (CONTROLLER_ACCOUNT, WORKER_ACCOUNT, GATEWAY_ACCOUNT):
        subject = {"kind": "ServiceAccount", "name": account, "namespace": namespace}
        bindings.append(_binding(account, account, [subject]))
    return bindings


def all_rbac(policy: Policy, namespace: str) -> list[Json]:
    """Every ClusterRole and ClusterRoleBinding Ringpilot needs, roles first."""
    return [*user_roles(), *component_roles(), *role_bindings(policy, namespace)]
