"""Authentication in auth mode: static tokens, 401s, ServiceAccount tokens, whoami, TokenReview; legacy mode.

Driven by kubectl (`--token`, `auth whoami`, `create token`) and the `kubernetes` client against `secured`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from kubernetes import client
from kubernetes.client.rest import ApiException

from controller.devkit.emulator import AuthConfig, EmulatorServer, load_token_file
from tests.emulator.conftest import client_as
from tests.fixtures.kube import Kubectl

UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


def whoami(kubectl: Kubectl) -> dict[str, object]:
    result = kubectl("auth", "whoami", "-o", "json", check=True)
    info: dict[str, object] = json.loads(result.stdout)["status"]["userInfo"]
    return info


def test_missing_or_unknown_token_is_401_with_the_real_status(secured: EmulatorServer) -> None:
    assert secured.serving_cert is not None
    ca = str(secured.serving_cert.ca_file)
    for headers in ({}, {"Authorization": "Bearer nobody"}):
        response = requests.get(
            f"{secured.url}/api/v1/namespaces/default/configmaps", headers=headers, timeout=10, verify=ca
        )
        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED
    assert requests.get(f"{secured.url}/readyz", timeout=10, verify=ca).text == "ok"
    assert requests.get(f"{secured.url}/version", timeout=10, verify=ca).status_code == 401


def test_kubectl_with_a_wrong_token_must_log_in(kubectl_as: Callable[[str], Kubectl]) -> None:
    result = kubectl_as("wrong-token")("get", "configmaps")
    assert result.returncode != 0
    assert "error: You must be logged in to the server" in result.stderr


def test_whoami_shows_the_token_users_identity_with_system_authenticated(
    kubectl_as: Callable[[str], Kubectl],
) -> None:
    assert whoami(kubectl_as("viewer-token")) == {
        "username": "dev-viewer",
        "uid": "uid-dev-viewer",
        "groups": ["viewers", "system:authenticated"],
    }
    table = kubectl_as("admin-token")("auth", "whoami", check=True).stdout
    assert "dev-admin" in table and "system:masters" in table


def test_kubectl_create_token_issues_a_service_account_identity(kubectl_as: Callable[[str], Kubectl]) -> None:
    admin = kubectl_as("admin-token")
    admin("create", "serviceaccount", "robot", check=True)
    token = admin("create", "token", "robot", check=True).stdout.strip()
    robot = kubectl_as(token)
    assert whoami(robot)["username"] == "system:serviceaccount:default:robot"
    assert whoami(robot)["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:default",
        "system:authenticated",
    ]
    forbidden = robot("get", "pods")
    assert "cannot list resource" in forbidden.stderr
    admin("delete", "serviceaccount", "robot", check=True)
    assert "Unauthorized" in robot("get", "pods").stderr


def test_token_request_for_a_missing_service_account_is_404(secured: EmulatorServer) -> None:
    api = client.CoreV1Api(client_as(secured, "admin-token"))
    with pytest.raises(ApiException) as caught:
        api.create_namespaced_service_account_token("ghost", "default", client.AuthenticationV1TokenRequest(spec={}))
    assert caught.value.status == 404
    assert json.loads(caught.value.body)["message"] == 'serviceaccounts "ghost" not found'


def test_token_review_answers_for_tokens_and_needs_permission(secured: EmulatorServer) -> None:
    core = client.CoreV1Api(client_as(secured, "admin-token"))
    core.create_namespaced_service_account("default", {"metadata": {"name": "gateway"}})
    issued = core.create_namespaced_service_account_token(
        "gateway", "default", client.AuthenticationV1TokenRequest(spec={"audiences": ["ringpilot-gateway"]})
    )
    assert issued.status.token and issued.spec.expiration_seconds == 3600
    reviews = client.AuthenticationV1Api(client_as(secured, "admin-token"))
    good = reviews.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token="viewer-token")))
    assert good.status.authenticated is True
    assert good.status.user.username == "dev-viewer"
    assert good.status.user.groups == ["viewers", "system:authenticated"]
    sa = reviews.create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=issued.status.token, audiences=["ringpilot-gateway"]))
    )
    assert sa.status.user.username == "system:serviceaccount:default:gateway"
    assert sa.status.audiences == ["ringpilot-gateway"]
    wrong_audience = reviews.create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=issued.status.token, audiences=["elsewhere"]))
    )
    assert not wrong_audience.status.authenticated
    bad = reviews.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token="made-up")))
    assert not bad.status.authenticated and bad.status.error == "invalid bearer token"
    viewer = client.AuthenticationV1Api(client_as(secured, "viewer-token"))
    with pytest.raises(ApiException) as caught:
        viewer.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token="admin-token")))
    assert caught.value.status == 403


def test_token_file_in_kube_apiserver_csv_format(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('t1,alice,1001,"cab,dev"\nt2,bob,1002\n\n')
    entries = load_token_file(path)
    assert [(e.token, e.user, e.uid, e.groups) for e in entries] == [
        ("t1", "alice", "1001", ("cab", "dev")),
        ("t2", "bob", "1002", ()),
    ]
    with EmulatorServer(auth=AuthConfig.from_token_file(path)) as server:
        who = client.AuthenticationV1Api(client_as(server, "t1")).create_self_subject_review({})
        assert who.status.user_info.username == "alice"
        assert who.status.user_info.groups == ["cab", "dev", "system:authenticated"]


def test_without_auth_the_token_is_the_user_name_and_nothing_is_refused(
    kubectl: Kubectl, emulator: EmulatorServer
) -> None:
    who = client.AuthenticationV1Api(client_as(emulator, "alice")).create_self_subject_review({})
    assert who.status.user_info.username == "alice"
    assert whoami(kubectl)["username"] == "system:anonymous"
    response = requests.get(f"{emulator.url}/api/v1/namespaces/default/configmaps", timeout=10)
    assert response.status_code == 200
    assert "yes" in kubectl("auth", "can-i", "delete", "namespaces", check=True).stdout
