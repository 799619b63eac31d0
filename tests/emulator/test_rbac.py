"""RBAC in auth mode: 403 wording, roles and bindings, subresources, resourceNames, aggregation, can-i, impersonation.

Driven by kubectl (`auth can-i`, `get`, `apply`) and the `kubernetes` client (SubjectAccessReview, the
an `Impersonate-User` client as kubectl's `--as` sends) against `secured`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from controller.devkit.emulator import EmulatorServer
from tests.emulator.conftest import client_as
from tests.emulator.samples import GROUP, widget
from tests.fixtures.kube import Kubectl

RBAC = "rbac.authorization.k8s.io/v1"


def impersonating(configuration: client.Configuration, user: str, groups: tuple[str, ...] = ()) -> client.ApiClient:
    """An ApiClient that sends Kubernetes impersonation headers, as `kubectl --as/--as-group` does."""
    api_client = client.ApiClient(configuration)
    api_client.set_default_header("Impersonate-User", user)
    for group in groups:
        api_client.set_default_header("Impersonate-Group", group)
    return api_client


def role(name: str, rules: list[dict[str, object]], kind: str = "Role", **meta: object) -> dict[str, object]:
    return {"apiVersion": RBAC, "kind": kind, "metadata": {"name": name, **meta}, "rules": rules}


def binding(name: str, role_name: str, subject: dict[str, str], kind: str = "RoleBinding") -> dict[str, object]:
    role_kind = "Role" if kind == "RoleBinding" else "ClusterRole"
    return {
        "apiVersion": RBAC,
        "kind": kind,
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": [subject],
    }


def apply(kubectl: Kubectl, *objects: dict[str, object]) -> None:
    kubectl("apply", "-f", "-", input="".join(f"---\n{yaml.safe_dump(o)}" for o in objects), check=True)


@pytest.fixture
def admin(kubectl_as: Callable[[str], Kubectl]) -> Kubectl:
    return kubectl_as("admin-token")


@pytest.fixture
def viewer(kubectl_as: Callable[[str], Kubectl]) -> Kubectl:
    return kubectl_as("viewer-token")


def test_no_binding_means_forbidden_worded_as_kube_apiserver(admin: Kubectl, viewer: Kubectl) -> None:
    apply(admin, widget("w1"))
    result = viewer("get", "widgets")
    assert result.returncode != 0
    assert (
        'widgets.example.dev is forbidden: User "dev-viewer" cannot list resource "widgets" '
        'in API group "example.dev" in the namespace "default"'
    ) in result.stderr
    named = viewer("get", "namespace", "default")
    assert 'namespaces "default" is forbidden: User "dev-viewer" cannot get resource "namespaces"' in named.stderr
    assert "at the cluster scope" in viewer("get", "namespaces").stderr
    assert viewer("api-resources", "--api-group", GROUP, check=True).stdout.count("widgets") == 1


def test_role_binding_to_a_group_grants_its_verbs_in_its_namespace(admin: Kubectl, viewer: Kubectl) -> None:
    apply(
        admin,
        role("widget-reader", [{"apiGroups": [GROUP], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}]),
        binding("viewers-read", "widget-reader", {"kind": "Group", "name": "viewers"}),
        widget("w1"),
    )
    assert "w1" in viewer("get", "widgets", check=True).stdout
    denied = viewer("apply", "-f", "-", input=json.dumps(widget("w2")))
    assert (
        'User "dev-viewer" cannot create resource "widgets" in API group "example.dev" in the namespace "default"'
        in denied.stderr
    )
    assert viewer("auth", "can-i", "list", "widgets").stdout.strip() == "yes"
    assert viewer("auth", "can-i", "create", "widgets").stdout.strip() == "no"
    assert viewer("auth", "can-i", "list", "widgets", "-n", "kube-system").stdout.strip() == "no"
    listed = viewer("auth", "can-i", "--list", check=True).stdout
    assert "widgets.example.dev" in listed and "selfsubjectaccessreviews.authorization.k8s.io" in listed


def test_subresources_and_resource_names(admin: Kubectl, viewer: Kubectl, secured: EmulatorServer) -> None:
    apply(
        admin,
        role(
            "status-writer",
            [
                {"apiGroups": [GROUP], "resources": ["widgets/status"], "verbs": ["patch"]},
                {"apiGroups": [GROUP], "resources": ["widgets"], "verbs": ["get"], "resourceNames": ["w1"]},
            ],
        ),
        binding("viewer-status", "status-writer", {"kind": "User", "name": "dev-viewer"}),
        widget("w1"),
        widget("w2"),
    )
    custom = client.CustomObjectsApi(client_as(secured, "viewer-token"))
    custom.patch_namespaced_custom_object_status(
        GROUP, "v1", "default", "widgets", "w1", {"status": {"phase": "Ready"}}
    )
    assert custom.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w1")["status"]["phase"] == "Ready"
    with pytest.raises(ApiException) as caught:
        custom.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w1", {"spec": {"maxRing": 3}})
    assert caught.value.status == 403
    with pytest.raises(ApiException) as caught:
        custom.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w2")
    body = json.loads(caught.value.body)
    assert body["message"] == (
        'widgets.example.dev "w2" is forbidden: User "dev-viewer" cannot get resource "widgets" '
        'in API group "example.dev" in the namespace "default"'
    )
    assert body["details"] == {"name": "w2", "group": GROUP, "kind": "widgets"}


def test_cluster_role_aggregation_follows_labels(admin: Kubectl, viewer: Kubectl) -> None:
    label = {"ringpilot.dev/aggregate-to-readers": "true"}
    apply(
        admin,
        {
            **role("readers", [], kind="ClusterRole"),
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": label}]},
        },
        binding("viewers-readers", "readers", {"kind": "Group", "name": "viewers"}, kind="ClusterRoleBinding"),
        role(
            "gear-reader",
            [{"apiGroups": [GROUP], "resources": ["gears"], "verbs": ["list"]}],
            "ClusterRole",
            labels=label,
        ),
    )
    rules = json.loads(admin("get", "clusterrole", "readers", "-o", "json", check=True).stdout)["rules"]
    assert rules == [{"apiGroups": [GROUP], "resources": ["gears"], "verbs": ["list"]}]
    assert viewer("auth", "can-i", "list", "gears").stdout.strip() == "yes"
    admin("label", "clusterrole", "gear-reader", "ringpilot.dev/aggregate-to-readers-", check=True)
    assert viewer("auth", "can-i", "list", "gears").stdout.strip() == "no"
    view = json.loads(admin("get", "clusterrole", "view", "-o", "json", check=True).stdout)
    assert {
        "apiGroups": ["apps"],
        "resources": ["deployments", "deployments/status"],
        "verbs": ["get", "list", "watch"],
    } in view["rules"]


def test_subject_access_review_for_another_user(secured: EmulatorServer, admin: Kubectl) -> None:
    apply(
        admin,
        role("widget-reader", [{"apiGroups": [GROUP], "resources": ["widgets"], "verbs": ["get"]}]),
        binding("viewers-read", "widget-reader", {"kind": "Group", "name": "viewers"}),
    )
    api = client.AuthorizationV1Api(client_as(secured, "admin-token"))

    def allowed(user: str, groups: list[str], verb: str) -> bool:
        attributes = {"namespace": "default", "verb": verb, "group": GROUP, "resource": "widgets"}
        spec = {"user": user, "groups": groups, "resourceAttributes": attributes}
        return bool(api.create_subject_access_review({"spec": spec}).status.allowed)

    assert allowed("dev-viewer", ["viewers"], "get")
    assert not allowed("dev-viewer", ["viewers"], "delete")
    assert not allowed("dev-viewer", [], "get")
    assert allowed("anyone", ["system:masters"], "delete")


def test_impersonation_needs_the_impersonate_verb_and_then_runs_as_that_user(
    secured: EmulatorServer, admin: Kubectl
) -> None:
    configuration = client_as(secured, "agent-token").configuration
    as_viewer = client.AuthenticationV1Api(impersonating(configuration, "dev-viewer"))
    with pytest.raises(ApiException) as caught:
        as_viewer.create_self_subject_review({})
    assert caught.value.status == 403
    assert json.loads(caught.value.body)["message"] == (
        'users "dev-viewer" is forbidden: User "ringpilot-agent" cannot impersonate resource "users" '
        'in API group "" at the cluster scope'
    )
    apply(
        admin,
        role("impersonator", [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}], "ClusterRole"),
        binding(
            "agent-impersonates", "impersonator", {"kind": "User", "name": "ringpilot-agent"}, "ClusterRoleBinding"
        ),
    )
    who = as_viewer.create_self_subject_review({})
    assert who.status.user_info.username == "dev-viewer"
    assert who.status.user_info.groups == ["system:authenticated"]
    custom = client.CustomObjectsApi(impersonating(configuration, "dev-viewer"))
    with pytest.raises(ApiException) as caught:
        custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")
    assert 'User "dev-viewer" cannot list resource "widgets"' in json.loads(caught.value.body)["message"]
    with_group = client.AuthenticationV1Api(impersonating(configuration, "dev-viewer", ("viewers",)))
    with pytest.raises(ApiException) as caught:
        with_group.create_self_subject_review({})
    assert (
        'groups "viewers" is forbidden: User "ringpilot-agent" cannot impersonate resource "groups"'
        in (json.loads(caught.value.body)["message"])
    )
