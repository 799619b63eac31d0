"""The admission decisions: whose name an object carries, and what the webhooks refuse (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from controller.api.labels import CORRELATION_LABEL, CREATED_BY_ANNOTATION
from controller.api.policy import load_policy
from controller.reconcile.stamping import Requester, Review, needs_conversation, refusal, stamp, vouching_conversation

POLICY = load_policy()
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WORKER = "system:serviceaccount:ringpilot-system:ringpilot-worker"
CONTROLLER = "system:serviceaccount:ringpilot-system:ringpilot-controller"
GATEWAY = "system:serviceaccount:ringpilot-system:ringpilot-gateway"
DIGEST = "a" * 64


def body(spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "x", **meta}, "spec": spec}


def review(kind: str, who: str, new: dict[str, Any], old: dict[str, Any] | None = None) -> Review:
    return Review(kind, "UPDATE" if old else "CREATE", Requester(who), new, old, name="x")


def change(*decisions: dict[str, Any]) -> dict[str, Any]:
    return body({"submittedBy": "dev-publisher", "planDigest": DIGEST, "decisions": list(decisions)})


def test_a_forged_user_on_a_conversation_becomes_the_authenticated_one() -> None:
    stamped = stamp(review("Conversation", "dev-viewer", body({"user": "dev-admin"})), POLICY, NOW)
    assert stamped.spec == {"user": "dev-viewer"}
    assert stamped.annotations == {CREATED_BY_ANNOTATION: "kubernetes:dev-viewer"}
    assert stamped.warnings == ["spec.user: 'dev-admin' replaced by 'dev-viewer', the authenticated user"]


@pytest.mark.parametrize("kind", ["DeploymentTask", "Remediation"])
def test_a_requester_is_stamped_and_a_missing_one_filled_in(kind: str) -> None:
    forged = stamp(review(kind, "dev-publisher", body({"requestedBy": "dev-admin"})), POLICY, NOW)
    missing = stamp(review(kind, "dev-publisher", body({})), POLICY, NOW)
    assert forged.spec == missing.spec == {"requestedBy": "dev-publisher"}
    assert missing.warnings == []


@pytest.mark.parametrize("principal", [WORKER, GATEWAY, CONTROLLER])
def test_trusted_principals_keep_the_user_they_name(principal: str) -> None:
    stamped = stamp(review("DeploymentTask", principal, body({"requestedBy": "dev-publisher"})), POLICY, NOW)
    assert stamped.spec == {}
    assert stamped.annotations == {CREATED_BY_ANNOTATION: f"kubernetes:{principal}"}


def test_created_by_survives_an_edit() -> None:
    old = body({"user": "dev-viewer"}, annotations={CREATED_BY_ANNOTATION: "kubernetes:dev-viewer"})
    new = body({"user": "dev-viewer"}, annotations={CREATED_BY_ANNOTATION: "kubernetes:dev-admin"})
    stamped = stamp(review("Conversation", "dev-viewer", new, old), POLICY, NOW)
    assert stamped.annotations == {CREATED_BY_ANNOTATION: "kubernetes:dev-viewer"}


def test_a_new_decision_gets_the_requester_and_server_time() -> None:
    old = change({"approver": "dev-approver", "decision": "Approve", "decidedAt": "2026-11-30T10:00:00Z"})
    new = change(
        {"approver": "dev-approver", "decision": "Approve", "decidedAt": "2026-11-30T10:00:00Z"},
        {"approver": "dev-admin", "decision": "Approve", "decidedAt": "2020-01-01T00:00:00Z"},
    )
    stamped = stamp(review("ChangeRequest", "dev-approver-2", new, old), POLICY, NOW)
    assert stamped.spec["decisions"][0] == old["spec"]["decisions"][0]
    assert stamped.spec["decisions"][1] == {
        "approver": "dev-approver-2",
        "decision": "Approve",
        "decidedAt": "2026-12-01T12:00:00Z",
    }


def test_reapplying_a_decision_without_its_stamped_time_changes_nothing() -> None:
    old = change({"approver": "dev-approver", "decision": "Approve", "decidedAt": "2026-11-30T10:00:00Z"})
    reapplied = change({"approver": "dev-approver", "decision": "Approve"})
    stamped = stamp(review("ChangeRequest", "dev-admin", reapplied, old), POLICY, NOW)
    after = body({**reapplied["spec"], **stamped.spec})
    assert after["spec"]["decisions"] == old["spec"]["decisions"]
    assert refusal(review("ChangeRequest", "dev-admin", after, old), POLICY) is None


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        ("dev-viewer", "spec.decisions[0].approver: 'dev-viewer' holds role viewer, not cab-approver"),
        ("dev-publisher", "spec.decisions[0].approver: 'dev-publisher' submitted this change and may not decide on it"),
    ],
)
def test_a_decision_by_a_viewer_or_the_submitter_is_refused(who: str, reason: str) -> None:
    new = change({"approver": "dev-approver", "decision": "Approve"})
    stamped = stamp(review("ChangeRequest", who, new, change()), POLICY, NOW)
    after = body({**new["spec"], **stamped.spec})
    assert refusal(review("ChangeRequest", who, after, change()), POLICY) == reason


def test_decisions_are_append_only() -> None:
    old = change({"approver": "dev-approver", "decision": "Approve"})
    edited = change({"approver": "dev-approver", "decision": "Reject"})
    assert refusal(review("ChangeRequest", "dev-approver", edited, old), POLICY) == (
        "spec.decisions[0] is append-only: the decision by 'dev-approver' may not change"
    )
    assert refusal(review("ChangeRequest", "dev-approver", change(), old), POLICY) == (
        "spec.decisions is append-only: the decision by 'dev-approver' may not be removed"
    )
    twice = change(*old["spec"]["decisions"], {"approver": "dev-approver", "decision": "Approve"})
    assert refusal(review("ChangeRequest", "dev-approver", twice, old), POLICY) == (
        "spec.decisions[1].approver: 'dev-approver' has already decided"
    )
    good = change(*old["spec"]["decisions"], {"approver": "dev-approver-2", "decision": "Approve"})
    assert refusal(review("ChangeRequest", "dev-approver-2", good, old), POLICY) is None


def test_the_user_fields_are_immutable() -> None:
    old, new = body({"user": "dev-viewer"}), body({"user": "dev-admin"})
    assert refusal(review("Conversation", "dev-viewer", new, old), POLICY) == (
        "spec.user is immutable: it stays 'dev-viewer'"
    )
    old, new = body({"requestedBy": "dev-publisher"}), body({"requestedBy": "dev-admin", "cancel": True})
    assert refusal(review("DeploymentTask", "dev-admin", new, old), POLICY) == (
        "spec.requestedBy is immutable: it stays 'dev-publisher'"
    )


def messages(*pairs: tuple[str, str]) -> dict[str, Any]:
    return body({"user": "dev-viewer", "messages": [{"id": i, "text": t} for i, t in pairs]})


def test_messages_are_append_only_and_the_reason_names_the_message() -> None:
    old = messages(("m1", "hello"), ("m2", "status"))
    assert refusal(review("Conversation", "dev-viewer", messages(("m1", "hello")), old), POLICY) == (
        "spec.messages is append-only: message 'm2' may not be deleted"
    )
    edited = messages(("m1", "deploy web"), ("m2", "status"))
    assert refusal(review("Conversation", "dev-viewer", edited, old), POLICY) == (
        "spec.messages is append-only: message 'm1' may not be edited"
    )
    appended = messages(("m1", "hello"), ("m2", "status"), ("m3", "yes"))
    assert refusal(review("Conversation", "dev-viewer", appended, old), POLICY) is None


def test_only_the_controller_may_name_system_ringpilot() -> None:
    automatic = body({"assignment": "web-ring-0", "requestedBy": "system:ringpilot"})
    assert refusal(review("Remediation", CONTROLLER, automatic), POLICY) is None
    assert refusal(review("Remediation", GATEWAY, automatic), POLICY) == (
        "spec.requestedBy: system:ringpilot may be named only by the controller"
    )


def conversation(user: str, correlation: str, tool: str | None) -> dict[str, Any]:
    pending = {"id": "p1", "tool": tool, "summary": "deploy", "arguments": {"change_request": "x"}} if tool else None
    return {
        "metadata": {"name": "c", "labels": {CORRELATION_LABEL: correlation}},
        "spec": {"user": user},
        "status": {"pending": pending},
    }


def test_the_worker_names_a_user_only_for_a_pending_action_of_that_users_conversation() -> None:
    task = body({"requestedBy": "dev-publisher"}, labels={CORRELATION_LABEL: "corr-1"})
    asked = review("DeploymentTask", WORKER, task)
    assert needs_conversation(asked, POLICY)
    assert vouching_conversation(asked, [conversation("dev-publisher", "corr-1", "deploy")]) is not None
    for other in (
        conversation("dev-admin", "corr-1", "deploy"),  # someone else's conversation
        conversation("dev-publisher", "corr-2", "deploy"),  # another conversation of the user
        conversation("dev-publisher", "corr-1", None),  # nothing pending
    ):
        assert vouching_conversation(asked, [other]) is None
    assert refusal(asked, POLICY, conversation_vouches=False) == (
        "spec.requestedBy: the worker may name 'dev-publisher' only for an action pending in a Conversation of "
        "'dev-publisher', and there is none"
    )
    assert refusal(asked, POLICY, conversation_vouches=True) is None
    assert not needs_conversation(review("DeploymentTask", GATEWAY, task), POLICY)


def test_the_worker_appends_a_decision_only_for_a_pending_decide_change() -> None:
    decided = change({"approver": "dev-approver", "decision": "Approve"})
    asked = review("ChangeRequest", WORKER, decided, change())
    assert needs_conversation(asked, POLICY)
    assert vouching_conversation(asked, [conversation("dev-approver", "corr-9", "decide_change")]) is not None
    assert vouching_conversation(asked, [conversation("dev-approver", "corr-9", "deploy")]) is None
