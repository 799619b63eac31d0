"""The RBAC rules come from the role table: what each role's ClusterRole allows, and who is bound to it."""

from __future__ import annotations

from typing import Any

from controller.api.policy import load_policy
from controller.api.rbacrules import AGGREGATE_TO_ADMIN, all_rbac, component_roles, role_bindings, user_roles


def allows(rules: list[dict[str, Any]], verb: str, resource: str, group: str = "ringpilot.dev") -> bool:
    return any(
        group in r.get("apiGroups", []) and resource in r.get("resources", []) and verb in r.get("verbs", [])
        for r in rules
    )


def by_name(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects}


def admin_rules(roles: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """What the aggregation controller gives ringpilot-admin."""
    return [
        rule
        for role in roles.values()
        if role["metadata"]["labels"].get(AGGREGATE_TO_ADMIN) == "true"
        for rule in role["rules"]
    ]


def test_each_role_may_do_what_the_role_table_says_and_no_more() -> None:
    roles = by_name(user_roles())
    viewer, operator = roles["ringpilot-viewer"]["rules"], roles["ringpilot-operator"]["rules"]
    publisher, approver = roles["ringpilot-publisher"]["rules"], roles["ringpilot-approver"]["rules"]
    admin = admin_rules(roles)
    assert not allows(viewer, "create", "deploymenttasks") and allows(viewer, "create", "conversations")
    assert allows(operator, "create", "remediations") and not allows(operator, "patch", "deploymenttasks")
    assert allows(publisher, "create", "deploymenttasks") and not allows(publisher, "patch", "changerequests")
    assert allows(approver, "patch", "changerequests") and not allows(approver, "create", "deploymenttasks")
    assert allows(admin, "delete", "assignments") and allows(admin, "create", "remediations")
    assert not allows(admin, "patch", "changerequests")  # an admin never approves
    assert roles["ringpilot-admin"]["aggregationRule"]["clusterRoleSelectors"] == [
        {"matchLabels": {AGGREGATE_TO_ADMIN: "true"}}
    ]
    assert "ringpilot-publisher" not in {n for n, r in roles.items() if AGGREGATE_TO_ADMIN in r["metadata"]["labels"]}


def test_the_policy_binds_every_dev_user_and_each_component_to_its_own_role() -> None:
    bindings = by_name(role_bindings(load_policy(), "ringpilot-system"))
    approvers = {s["name"] for s in bindings["ringpilot-approver"]["subjects"]}
    assert {"dev-approver", "dev-approver-2", "dev-approver-3", "ringpilot-cab"} == approvers
    assert bindings["ringpilot-worker"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "ringpilot-worker", "namespace": "ringpilot-system"}
    ]
    kinds = [(o["kind"], o["metadata"]["name"]) for o in all_rbac(load_policy(), "ringpilot-system")]
    assert len(kinds) == len(set(kinds))  # one object per name and kind


def test_no_component_may_impersonate_anyone() -> None:
    components = by_name(component_roles())
    for name in ("ringpilot-controller", "ringpilot-worker", "ringpilot-gateway"):
        rules = components[name]["rules"]
        assert not any("impersonate" in r["verbs"] for r in rules), name
        assert not allows(rules, "impersonate", "users", "") and not allows(rules, "impersonate", "serviceaccounts", "")
    assert not allows(components["ringpilot-gateway"]["rules"], "create", "deploymenttasks")
