"""Admission webhooks against a real HTTPS webhook: AdmissionReview, order, patches, denials, warnings, failures.

The webhook is reached through a `service` reference mapped to its loopback port (`service_ports`) or a `url`;
driven by kubectl (a denied apply, a Warning) and the `kubernetes` client.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from controller.devkit.emulator import EmulatorServer
from tests.emulator.conftest import client_as
from tests.emulator.samples import GROUP, crds, widget
from tests.emulator.webhook_server import WebhookServer, make_certs, patch_response, webhook_config
from tests.fixtures.kube import Kubectl, make_kubectl

SERVICE = ("ringpilot-system", "ringpilot-webhook")
HOST = "ringpilot-webhook.ringpilot-system.svc"
WIDGET_RULE = {
    "apiGroups": [GROUP],
    "apiVersions": ["v1"],
    "operations": ["CREATE", "UPDATE"],
    "resources": ["widgets"],
}
Json = dict[str, Any]


@pytest.fixture
def hook(tmp_path: Path) -> Iterator[WebhookServer]:
    answers: dict[str, Any] = {}

    def answer(review: Json) -> Json:
        path = server.paths[-1].split("?")[0]
        reply = answers.get(path, {"allowed": True})
        return reply(review) if callable(reply) else dict(reply)

    server = WebhookServer(tmp_path / "webhook-tls", answer, [HOST, "127.0.0.1"])
    server.answers = answers  # type: ignore[attr-defined]
    with server:
        yield server


@pytest.fixture
def cluster(hook: WebhookServer) -> Iterator[EmulatorServer]:
    with EmulatorServer(service_ports={SERVICE: hook.port}) as server:
        for crd in crds():
            server.apply_crd(crd)
        yield server


@pytest.fixture
def kubectl(cluster: EmulatorServer, tmp_path: Path) -> Kubectl:
    return make_kubectl(cluster.write_kubeconfig(tmp_path / "kubeconfig.yaml"), tmp_path / "kubectl-cache")


def via_service(hook: WebhookServer, path: str, **extra: Any) -> Json:
    service = {"namespace": SERVICE[0], "name": SERVICE[1], "path": path}
    return {"clientConfig": {"service": service, "caBundle": hook.ca_bundle}, "rules": [WIDGET_RULE], **extra}


def register(server: EmulatorServer, kind: str, name: str, hooks: list[Json]) -> None:
    admission = client.AdmissionregistrationV1Api(client_as(server, "ringpilot-dev"))
    body = webhook_config(kind, name, hooks)
    if kind == "MutatingWebhookConfiguration":
        admission.create_mutating_webhook_configuration(body)
    else:
        admission.create_validating_webhook_configuration(body)


def custom(server: EmulatorServer, token: str = "alice") -> Any:
    return client.CustomObjectsApi(client_as(server, token))


def test_review_order_and_patch_mutating_then_schema_then_validating(
    cluster: EmulatorServer, hook: WebhookServer
) -> None:
    hook.answers["/mutate"] = patch_response(  # type: ignore[attr-defined]
        [{"op": "add", "path": "/metadata/labels", "value": {"stamped-by": "webhook"}}]
    )
    register(
        cluster, "MutatingWebhookConfiguration", "stamp", [via_service(hook, "/mutate", name="stamp.ringpilot.dev")]
    )
    register(
        cluster, "ValidatingWebhookConfiguration", "check", [via_service(hook, "/validate", name="check.ringpilot.dev")]
    )
    created = custom(cluster).create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w1"))
    assert created["metadata"]["labels"] == {"stamped-by": "webhook"}
    mutate, validate = hook.reviews
    request = mutate["request"]
    assert mutate["apiVersion"] == "admission.k8s.io/v1" and mutate["kind"] == "AdmissionReview"
    assert request["kind"] == {"group": GROUP, "version": "v1", "kind": "Widget"}
    assert request["resource"] == {"group": GROUP, "version": "v1", "resource": "widgets"}
    assert request["requestKind"] == request["kind"] and request["requestResource"] == request["resource"]
    assert (request["operation"], request["name"], request["namespace"]) == ("CREATE", "w1", "default")
    assert request["userInfo"] == {"username": "alice", "groups": ["system:authenticated"]}
    assert request["oldObject"] is None and request["dryRun"] is False
    assert request["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    assert "action" not in request["object"]["spec"]
    assert validate["request"]["object"]["spec"]["action"] == "Deploy"
    assert validate["request"]["object"]["metadata"]["labels"] == {"stamped-by": "webhook"}
    assert validate["request"]["uid"] != request["uid"]
    assert hook.paths[0] == "/mutate?timeout=10s"


def test_denial_reaches_kubectl_with_the_webhooks_message_and_warnings_are_shown(
    cluster: EmulatorServer, hook: WebhookServer, kubectl: Kubectl
) -> None:
    def judge(review: Json) -> Json:
        if review["request"]["object"]["spec"]["app"] == "forged":
            return {"allowed": False, "status": {"code": 403, "message": "spec.user is stamped by the server"}}
        return {"allowed": True, "warnings": ["maxRing defaults to 1"]}

    hook.answers["/validate"] = judge  # type: ignore[attr-defined]
    register(
        cluster, "ValidatingWebhookConfiguration", "check", [via_service(hook, "/validate", name="check.ringpilot.dev")]
    )
    accepted = kubectl("apply", "-f", "-", input=json.dumps(widget("w1")), check=True)
    assert "Warning: maxRing defaults to 1" in accepted.stderr
    denied = kubectl("apply", "-f", "-", input=json.dumps(widget("w2", app="forged")))
    assert denied.returncode != 0
    assert (
        'admission webhook "check.ringpilot.dev" denied the request: spec.user is stamped by the server'
        in denied.stderr
    )
    with pytest.raises(ApiException) as caught:
        custom(cluster).create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w3", app="forged"))
    assert caught.value.status == 403
    assert kubectl("get", "widget", "w2").returncode != 0


def test_failure_policy_fail_and_ignore(cluster: EmulatorServer, hook: WebhookServer) -> None:
    broken = {"namespace": "ringpilot-system", "name": "gone", "path": "/x"}
    unreachable = {"clientConfig": {"service": broken, "caBundle": hook.ca_bundle}, "rules": [WIDGET_RULE]}
    register(
        cluster,
        "ValidatingWebhookConfiguration",
        "soft",
        [{**unreachable, "name": "soft.ringpilot.dev", "failurePolicy": "Ignore"}],
    )
    custom(cluster).create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w1"))
    register(cluster, "ValidatingWebhookConfiguration", "hard", [{**unreachable, "name": "hard.ringpilot.dev"}])
    with pytest.raises(ApiException) as caught:
        custom(cluster).create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w2"))
    body = json.loads(caught.value.body)
    assert caught.value.status == 500 and body["reason"] == "InternalError"
    assert body["message"] == (
        'Internal error occurred: failed calling webhook "hard.ringpilot.dev": failed to call webhook: '
        'Post "https://gone.ringpilot-system.svc:443/x?timeout=10s": service "gone" not found'
    )


def test_tls_is_verified_against_the_ca_bundle_and_timeouts_apply(
    cluster: EmulatorServer, hook: WebhookServer, tmp_path: Path
) -> None:
    by_url = {
        "name": "url.ringpilot.dev",
        "rules": [WIDGET_RULE],
        "clientConfig": {"url": f"https://127.0.0.1:{hook.port}/by-url", "caBundle": hook.ca_bundle},
    }
    register(cluster, "ValidatingWebhookConfiguration", "by-url", [by_url])
    custom(cluster).create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w0"))
    assert hook.paths == ["/by-url?timeout=10s"]
    admission = client.AdmissionregistrationV1Api(client_as(cluster, "x"))
    admission.delete_validating_webhook_configuration("by-url")
    unrelated, _, _ = make_certs(tmp_path / "unrelated-ca", ["elsewhere"])
    wrong_ca = via_service(hook, "/v", name="ca.ringpilot.dev")
    wrong_ca["clientConfig"]["caBundle"] = base64.b64encode(unrelated).decode()
    register(cluster, "ValidatingWebhookConfiguration", "wrong-ca", [wrong_ca])
    with pytest.raises(ApiException) as caught:
        custom(cluster).create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w1"))
    message = json.loads(caught.value.body)["message"]
    assert message.startswith('Internal error occurred: failed calling webhook "ca.ringpilot.dev": failed to call')
    assert "tls: failed to verify certificate: x509: certificate signed by unknown authority" in message
    assert len(hook.reviews) == 1
    admission.delete_validating_webhook_configuration("wrong-ca")
    hook.delay_seconds = 2.0
    slow = via_service(hook, "/slow", name="slow.ringpilot.dev", timeoutSeconds=1)
    register(cluster, "ValidatingWebhookConfiguration", "slow", [slow])
    with pytest.raises(ApiException) as caught:
        custom(cluster).create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w2"))
    assert json.loads(caught.value.body)["message"].endswith(
        'Post "https://ringpilot-webhook.ringpilot-system.svc:443/slow?timeout=1s": context deadline exceeded'
    )


def test_status_subresource_selectors_delete_and_dry_run(cluster: EmulatorServer, hook: WebhookServer) -> None:
    status_rule = {**WIDGET_RULE, "operations": ["UPDATE"], "resources": ["widgets/status"]}
    delete_rule = {**WIDGET_RULE, "operations": ["DELETE"]}
    register(
        cluster,
        "ValidatingWebhookConfiguration",
        "scoped",
        [
            {**via_service(hook, "/status", name="status.ringpilot.dev"), "rules": [status_rule]},
            {
                **via_service(hook, "/labelled", name="labelled.ringpilot.dev"),
                "objectSelector": {"matchLabels": {"watched": "yes"}},
            },
            {
                **via_service(hook, "/rings", name="rings.ringpilot.dev"),
                "namespaceSelector": {"matchExpressions": [{"key": "ring", "operator": "Exists"}]},
            },
            {**via_service(hook, "/delete", name="delete.ringpilot.dev"), "rules": [delete_rule]},
        ],
    )
    api = custom(cluster)
    api.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w1"))
    assert hook.reviews == []
    api.patch_namespaced_custom_object_status(GROUP, "v1", "default", "widgets", "w1", {"status": {"phase": "Ready"}})
    (status,) = hook.reviews
    assert status["request"]["subResource"] == "status" and status["request"]["operation"] == "UPDATE"
    assert status["request"]["oldObject"]["metadata"]["name"] == "w1"
    labelled = widget("w2")
    labelled["metadata"]["labels"] = {"watched": "yes"}
    api.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", labelled, dry_run="All")
    assert hook.paths[-1].startswith("/labelled") and hook.reviews[-1]["request"]["dryRun"] is True
    with pytest.raises(ApiException):
        api.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w2")
    core = client.CoreV1Api(client_as(cluster, "alice"))
    core.create_namespace({"metadata": {"name": "ring-1", "labels": {"ring": "1"}}})
    api.create_namespaced_custom_object(GROUP, "v1", "ring-1", "widgets", widget("w3", namespace="ring-1"))
    assert hook.paths[-1].startswith("/rings")
    api.delete_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w1")
    deleted = hook.reviews[-1]["request"]
    assert deleted["operation"] == "DELETE" and deleted["object"] is None
    assert deleted["oldObject"]["status"] == {"phase": "Ready"}
    assert deleted["options"]["kind"] == "DeleteOptions"


def test_webhooks_see_the_authenticated_user_in_auth_mode(
    hook: WebhookServer, serving_cert: Any, tmp_path: Path
) -> None:
    from controller.devkit.emulator import AuthConfig, TokenEntry

    tokens = (TokenEntry(token="root", user="dev-admin", groups=("system:masters",)),)
    with EmulatorServer(
        auth=AuthConfig(tokens=tokens), serving_cert=serving_cert, service_ports={SERVICE: hook.port}
    ) as server:
        for crd in crds():
            server.apply_crd(crd)
        register_as = client.AdmissionregistrationV1Api(client_as(server, "root"))
        register_as.create_validating_webhook_configuration(
            webhook_config("ValidatingWebhookConfiguration", "check", [via_service(hook, "/v", name="v.ringpilot.dev")])
        )
        admin = make_kubectl(server.write_kubeconfig(tmp_path / "root.yaml", token="root"), tmp_path / "c1")
        admin("create", "serviceaccount", "gateway", check=True)
        token = admin("create", "token", "gateway", check=True).stdout.strip()
        admin(
            "create",
            "clusterrolebinding",
            "gateway-admin",
            "--clusterrole=cluster-admin",
            "--serviceaccount=default:gateway",
            check=True,
        )
        gateway = make_kubectl(server.write_kubeconfig(tmp_path / "gw.yaml", token=token), tmp_path / "c2")
        gateway("apply", "-f", "-", input=json.dumps(widget("w1")), check=True)
        user = hook.reviews[-1]["request"]["userInfo"]
        assert user["username"] == "system:serviceaccount:default:gateway"
        assert user["groups"] == ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]


def test_a_patch_raced_by_other_writers_during_its_webhooks_is_re_admitted_until_it_lands(
    cluster: EmulatorServer, hook: WebhookServer
) -> None:
    # kube-apiserver re-runs admission on every storage conflict of a write without a resourceVersion
    # (GuaranteedUpdate), so a busy object never turns a plain patch into a 409 the client did not ask for.
    register(
        cluster, "ValidatingWebhookConfiguration", "raced", [via_service(hook, "/raced", name="raced.ringpilot.dev")]
    )
    writer = custom(cluster, "bob")
    writer.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("busy"))
    races = iter(range(8))  # more than the 5 conflicts upstream's patch handler itself would absorb
    phases = ("Pending", "Ready")

    def race_then_allow(review: Json) -> Json:
        race = next(races, None)
        if race is not None:  # another writer lands while this review is out
            writer.patch_namespaced_custom_object_status(
                GROUP, "v1", "default", "widgets", "busy", {"status": {"phase": phases[race % 2]}}
            )
        return {"allowed": True}

    hook.answers["/raced"] = race_then_allow  # type: ignore[attr-defined]
    patched = custom(cluster).patch_namespaced_custom_object(
        GROUP, "v1", "default", "widgets", "busy", {"spec": {"app": "api"}}
    )
    assert patched["spec"]["app"] == "api"
    assert patched["status"]["phase"] == "Ready"  # the other writer's last status is kept
    assert len(hook.reviews) >= 9  # admitted again after each of the 8 races
