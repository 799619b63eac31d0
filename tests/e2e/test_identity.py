"""Real identities end to end: a kubectl context per dev user, RBAC before any code, the webhooks at work."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controller.api.rbacrules import CONTROLLER_ACCOUNT, WORKER_ACCOUNT
from controller.storage.db import connect
from tests.fixtures.stack import Stack, wait_for

pytestmark = pytest.mark.e2e
NS = "identity-e2e"
DIGEST = "b" * 64
GROUP, VERSION = "ringpilot.dev", "v1alpha1"


@pytest.fixture(scope="module")
def ns(stack: Stack) -> str:
    stack.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    )
    return NS


def task_doc(name: str, requested_by: str) -> dict[str, Any]:
    spec = {"app": "web", "version": "1.4.1", "maxRing": 0, "requestedBy": requested_by, "cancel": True}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DeploymentTask", "metadata": {"name": name}, "spec": spec}


def apply(stack: Stack, doc: dict[str, Any], user: str) -> subprocess.CompletedProcess[str]:
    return stack.kubectl("apply", "-n", NS, "-f", "-", stdin=yaml.safe_dump(doc), user=user, check=False)


def append_decision(stack: Stack, change: str, user: str, approver: str) -> subprocess.CompletedProcess[str]:
    patch = [{"op": "add", "path": "/spec/decisions/-", "value": {"approver": approver, "decision": "Approve"}}]
    return stack.kubectl(
        "patch", "changerequest", change, "-n", NS, "--type=json", "-p", json.dumps(patch), user=user, check=False
    )


def test_each_context_is_its_user(stack: Stack, ns: str) -> None:
    for user in ("dev-viewer", "dev-approver"):
        review = json.loads(stack.kubectl("auth", "whoami", "-o", "json", user=user).stdout)
        assert review["status"]["userInfo"]["username"] == user
    unknown = stack.kubectl("--token", "no-such-token", "get", "conversations", "-n", ns, check=False)
    assert unknown.returncode != 0 and "Unauthorized" in unknown.stderr


#: (user, verb, resource) → may they, by the role table (domain.md §7).
CAN_I = {
    ("dev-viewer", "create", "deploymenttasks"): False,
    ("dev-viewer", "get", "deploymenttasks"): True,
    ("dev-viewer", "create", "conversations"): True,
    ("dev-viewer", "patch", "changerequests"): False,
    ("dev-operator", "create", "remediations"): True,
    ("dev-operator", "create", "deploymenttasks"): True,  # rollback
    ("dev-operator", "patch", "deploymenttasks"): False,  # no cancel
    ("dev-publisher", "create", "deploymenttasks"): True,
    ("dev-publisher", "patch", "deploymenttasks"): True,  # cancel
    ("dev-publisher", "create", "remediations"): False,
    ("dev-publisher", "patch", "changerequests"): False,
    ("dev-approver", "patch", "changerequests"): True,
    ("dev-approver", "create", "deploymenttasks"): False,
    ("dev-admin", "patch", "changerequests"): False,
    ("dev-admin", "create", "remediations"): True,
    ("dev-admin", "delete", "assignments"): True,
    ("dev-admin", "patch", "deploymenttasks"): True,
}


def test_kubectl_auth_can_i_answers_as_the_role_table_says(stack: Stack, ns: str) -> None:
    answers = {
        key: stack.kubectl("auth", "can-i", key[1], f"{key[2]}.{GROUP}", "-n", ns, user=key[0], check=False)
        for key in CAN_I
    }
    got = {key: result.stdout.strip() == "yes" for key, result in answers.items()}
    assert got == CAN_I


def test_a_viewer_cannot_create_a_task_and_a_publishers_forged_requester_is_replaced(stack: Stack, ns: str) -> None:
    refused = apply(stack, task_doc("by-viewer", "dev-viewer"), "dev-viewer")
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower()
    forged = apply(stack, task_doc("forged", "dev-admin"), "dev-publisher")
    assert forged.returncode == 0, forged.stderr
    assert "'dev-admin' replaced by 'dev-publisher'" in forged.stderr  # the webhook's warning
    task = stack.get("deploymenttasks", "forged", ns)
    assert task["spec"]["requestedBy"] == "dev-publisher"
    assert task["metadata"]["annotations"]["ringpilot.dev/created-by"] == "kubernetes:dev-publisher"
    edited = stack.kubectl(
        "patch", "dtask", "forged", "-n", ns, "--type=merge", "-p", '{"spec":{"requestedBy":"dev-admin"}}',
        user="dev-publisher", check=False,
    )  # fmt: skip
    assert edited.returncode != 0 and "spec.requestedBy is immutable" in edited.stderr

    def audited() -> list[Any]:
        with connect(stack.database_url) as conn:
            return conn.execute(
                "SELECT detail->>'createdBy' AS by FROM audit_events WHERE kind = 'DeploymentTask' AND name = %s",
                ("forged",),
            ).fetchall()

    rows = wait_for(audited, 30, 0.2, "the task's audit rows")
    assert {r["by"] for r in rows} == {"kubernetes:dev-publisher"}


def test_a_conversation_belongs_to_whoever_created_it_and_its_messages_are_append_only(stack: Stack, ns: str) -> None:
    doc = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Conversation",
        "metadata": {"name": "mine"},
        "spec": {"user": "dev-admin", "messages": [{"id": "m1", "text": "what is the status of web?"}]},
    }
    assert apply(stack, doc, "dev-viewer").returncode == 0
    assert stack.get("conversations", "mine", ns)["spec"]["user"] == "dev-viewer"
    patch = json.dumps([{"op": "replace", "path": "/spec/messages/0/text", "value": "deploy web"}])
    edited = stack.kubectl(
        "patch", "conv", "mine", "-n", ns, "--type=json", "-p", patch, user="dev-viewer", check=False
    )
    assert edited.returncode != 0 and "message 'm1' may not be edited" in edited.stderr


def test_decisions_by_a_viewer_or_the_submitter_are_refused_and_approve_nothing(stack: Stack, ns: str) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ChangeRequest",
        "metadata": {"name": "cab-identity"},
        "spec": {
            "task": "no-such-task",
            "app": "web",
            "version": "9.9.9",
            "maxRing": 2,
            "riskScore": 70,
            "planDigest": DIGEST,
            "requiredApprovals": 1,
            "submittedBy": "dev-approver-2",
            "decisions": [],
        },
    }
    stack.custom_as(CONTROLLER_ACCOUNT).create_namespaced_custom_object(GROUP, VERSION, ns, "changerequests", body)
    viewer = append_decision(stack, "cab-identity", "dev-viewer", "dev-approver")
    assert viewer.returncode != 0 and "forbidden" in viewer.stderr.lower()  # RBAC, before any code
    submitter = append_decision(stack, "cab-identity", "dev-approver-2", "dev-approver")
    assert submitter.returncode != 0
    assert "spec.decisions[0].approver: 'dev-approver-2' submitted this change and may not decide" in submitter.stderr
    assert stack.get("changerequests", "cab-identity", ns)["spec"]["decisions"] == []
    named = append_decision(stack, "cab-identity", "dev-approver", "dev-approver-3")
    assert named.returncode == 0, named.stderr
    [decision] = stack.get("changerequests", "cab-identity", ns)["spec"]["decisions"]
    assert decision["approver"] == "dev-approver" and decision["decidedAt"]


def test_the_worker_names_a_user_only_for_an_action_pending_in_their_conversation(stack: Stack, ns: str) -> None:
    """The chat agent's credentials: the worker's own identity, which cannot impersonate anyone, and may name a
    user on a DeploymentTask only when that user's Conversation has the action pending (issue #8 point 7)."""
    worker = stack.custom_as(WORKER_ACCOUNT)
    doc = task_doc("worker-forged", "dev-admin")
    doc["metadata"]["labels"] = {"ringpilot.dev/correlation-id": "corr-nobody-confirmed"}
    with pytest.raises(ApiException) as refused:
        worker.create_namespaced_custom_object(GROUP, VERSION, ns, "deploymenttasks", doc)
    assert refused.value.status == 403
    assert (
        "spec.requestedBy: the worker may name 'dev-admin' only for an action pending in a Conversation of "
        "'dev-admin', and there is none"
    ) in str(refused.value.body)
    assert not stack.custom.list_namespaced_custom_object(
        GROUP, VERSION, ns, "deploymenttasks", field_selector="metadata.name=worker-forged"
    )["items"]
    for target in ("users", "serviceaccounts", "groups"):
        review = client.AuthorizationV1Api(stack.as_user(WORKER_ACCOUNT)).create_self_subject_access_review(
            {"spec": {"resourceAttributes": {"verb": "impersonate", "resource": target, "name": "dev-admin"}}}
        )
        assert review.status.allowed is False, target


def test_with_the_webhooks_down_writes_fail_closed_and_reads_keep_working(stack: Stack, ns: str) -> None:
    stack.stop_controller()
    try:
        down = apply(stack, task_doc("while-down", "dev-publisher"), "dev-publisher")
        assert down.returncode != 0 and "failed calling webhook" in down.stderr
        assert stack.kubectl("get", "dtask", "-n", ns, user="dev-viewer").returncode == 0
    finally:
        stack.start_controller()
