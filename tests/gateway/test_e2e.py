"""End to end: the real `ringpilot gateway` (uvicorn) on the e2e stack, with the real controller, worker,
admission webhooks and RBAC behind it, driven over HTTP and SSE as the page and the CLI drive it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from controller.api.labels import CORRELATION_LABEL, CREATED_BY_ANNOTATION
from tests.agent import objects
from tests.fixtures.stack import Stack, wait_for
from tests.gateway.conftest import Served, spawn_gateway, stop_gateway
from tests.orchestration.test_e2e import HIGH_RISK, NS, apply_task, new_app, wait_phase

pytestmark = pytest.mark.e2e


def read_stream(
    served: Served,
    user: str,
    name: str,
    until: Callable[[list[dict[str, Any]]], bool],
    last_event_id: str | None = None,
) -> list[dict[str, Any]]:
    """Events of the stream until `until(events)` holds; then the connection is dropped (the stream is cut)."""
    headers = served.headers(user)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    url = f"{served.url}/api/v1/conversations/{name}/events"
    events: list[dict[str, Any]] = []
    frame: dict[str, Any] = {}
    with requests.get(url, headers=headers, params={"namespace": served.namespace}, stream=True, timeout=60) as r:
        assert r.status_code == 200, r.text
        for line in r.iter_lines(decode_unicode=True):
            if line == "":
                if "event" in frame:
                    events.append(frame)
                    if until(events):
                        return events
                frame = {}
            elif line.startswith(("id:", "event:", "data:")):
                key, _, value = line.partition(":")
                frame[key] = json.loads(value) if key == "data" else value.strip()
    raise AssertionError(f"the stream ended early after {events}")


def api(served: Served, user: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    params = {"namespace": served.namespace, **kwargs.pop("params", {})}
    return requests.request(
        method, f"{served.url}/api/v1{path}", headers=served.headers(user), params=params, timeout=30, **kwargs
    )


def completed(message_id: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda events: any(
        e["event"] in ("turn.completed", "turn.failed") and e["data"]["messageId"] == message_id for e in events
    )


def test_auth_and_isolation_hold_over_http(served: Served) -> None:
    assert requests.get(f"{served.url}/api/v1/whoami", timeout=10).status_code == 401
    bad = requests.get(f"{served.url}/api/v1/whoami", headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "Unauthorized"
    me = api(served, "dev-approver", "GET", "/whoami").json()
    assert (me["user"], me["roles"]) == ("dev-approver", ["cab-approver"])
    name = api(served, "dev-operator", "POST", "/conversations", json={}).json()["name"]
    assert api(served, "dev-viewer", "GET", f"/conversations/{name}").status_code == 404
    assert api(served, "dev-admin", "GET", f"/conversations/{name}").status_code == 200


def test_a_publishers_deploy_is_streamed_as_a_proposal_and_confirmed_over_http(served: Served, stack: Stack) -> None:
    made = api(served, "dev-publisher", "POST", "/conversations", json={"text": "deploy web 1.4.2 to ring 0"})
    assert made.status_code == 201
    name, correlation = made.json()["name"], made.json()["correlationId"]
    events = read_stream(served, "dev-publisher", name, completed("m1"), last_event_id="0")
    [proposal] = [e for e in events if e["event"] == "confirmation.required"]
    assert proposal["data"]["tool"] == "deploy" and proposal["data"]["summary"].startswith("deploy web 1.4.2")
    listed = stack.kubectl("get", "conv", "-n", served.namespace, "-o", "name").stdout
    assert f"conversation.ringpilot.dev/{name}" in listed  # the browser's chat is a CR like any other
    confirm = {"pendingId": proposal["data"]["pendingId"], "decision": "confirm"}
    accepted = api(served, "dev-publisher", "POST", f"/conversations/{name}/confirmations", json=confirm)
    assert accepted.status_code == 202
    last = events[-1]["id"]
    rest = read_stream(served, "dev-publisher", name, completed(accepted.json()["messageId"]), last_event_id=last)
    [created] = [e["data"] for e in rest if e["event"] == "resource.created"]
    task = stack.get("deploymenttasks", created["name"], served.namespace)
    stack.custom.patch_namespaced_custom_object(
        "ringpilot.dev", "v1alpha1", served.namespace, "deploymenttasks", created["name"], {"spec": {"cancel": True}}
    )
    assert created["kind"] == "DeploymentTask"
    assert task["spec"]["requestedBy"] == "dev-publisher"
    assert task["spec"]["correlationId"] == correlation == task["metadata"]["labels"][CORRELATION_LABEL]
    conversation = stack.get("conversations", name, served.namespace)
    assert conversation["spec"]["user"] == "dev-publisher"
    assert conversation["metadata"]["labels"][CORRELATION_LABEL] == correlation


def test_a_stream_cut_mid_conversation_resumes_with_every_event_exactly_once(served: Served) -> None:
    made = api(served, "dev-viewer", "POST", "/conversations", json={"text": "check system health"}).json()
    name = made["name"]
    for number, text in enumerate(("what circuit breakers are open?", "show running tasks"), start=2):
        posted = api(
            served, "dev-viewer", "POST", f"/conversations/{name}/messages", json={"id": f"m{number}", "text": text}
        )
        assert posted.status_code == 202
    first = read_stream(served, "dev-viewer", name, lambda events: len(events) == 3, last_event_id="0")
    second = read_stream(served, "dev-viewer", name, completed("m3"), last_event_id=first[-1]["id"])
    seen = [int(e["id"]) for e in first + second]
    assert seen == list(range(1, len(seen) + 1))  # nothing twice, nothing missing
    replay = read_stream(served, "dev-viewer", name, lambda events: len(events) == len(seen), last_event_id="0")
    assert [(e["id"], e["event"], e["data"]) for e in replay] == [
        (e["id"], e["event"], e["data"]) for e in first + second
    ]
    finished = [e["data"]["messageId"] for e in first + second if e["event"] == "turn.completed"]
    assert finished == ["m1", "m2", "m3"]


def test_kubectl_made_chats_are_streamed_too(served: Served, stack: Stack) -> None:
    doc = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "Conversation",
        "metadata": {"name": "from-kubectl", "namespace": served.namespace},
        "spec": {"user": "dev-viewer", "messages": [{"id": "m1", "text": "check system health"}]},
    }
    stack.kubectl("apply", "-f", "-", stdin=json.dumps(doc), user="dev-viewer")
    events = read_stream(served, "dev-viewer", "from-kubectl", completed("m1"), last_event_id="0")
    assert events[0]["event"] == "turn.started"
    assert any(e["event"] == "assistant.message" for e in events)


def test_an_approver_decides_a_change_over_http_and_the_submitter_is_refused(served: Served, stack: Stack) -> None:
    controller = stack.custom_as("ringpilot-controller")
    for name, submitter in (("gw-cab", "dev-publisher"), ("gw-own-cab", "dev-approver-2")):
        body = {
            "apiVersion": "ringpilot.dev/v1alpha1",
            "kind": "ChangeRequest",
            "metadata": {"name": name, "namespace": served.namespace},
            "spec": {
                "task": "payments-9-9-9",
                "app": "payments",
                "version": "9.9.9",
                "maxRing": 4,
                "riskScore": 62,
                "planDigest": objects.DIGEST,
                "requiredApprovals": 2,
                "submittedBy": submitter,
                "reviewDeadline": "2030-01-01T00:00:00Z",
            },
        }
        controller.create_namespaced_custom_object(
            "ringpilot.dev", "v1alpha1", served.namespace, "changerequests", body
        )
    decision = {"decision": "Approve", "planDigest": objects.DIGEST, "comment": "looks fine"}
    mine = api(served, "dev-approver", "GET", "/changerequests", params={"pending": "mine"}).json()["items"]
    assert {"gw-cab", "gw-own-cab"} <= {c["name"] for c in mine}
    refused = api(served, "dev-publisher", "POST", "/changerequests/gw-cab/decisions", json=decision)
    assert refused.status_code == 403
    own = api(served, "dev-approver-2", "POST", "/changerequests/gw-own-cab/decisions", json=decision)
    assert own.status_code == 403 and "submitted change request gw-own-cab" in own.json()["error"]["message"]
    # The controller counts a decision only on a ChangeRequest it opened for a real task (issue 12):
    # a risky task of a fresh app waits for the CAB, and the approver decides over HTTP.
    stack.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    )
    app = new_app(stack)
    apply_task(stack, "gw-risky", app=app, maxRing=3, risk=HIGH_RISK, approval={"maxWaitSeconds": 600})
    change = wait_phase(stack, "gw-risky", "AwaitingApproval")["status"]["changeRequest"]
    digest = stack.get("changerequests", change, NS)["spec"]["planDigest"]
    in_ns = {"namespace": NS}
    done = api(
        served,
        "dev-approver",
        "POST",
        f"/changerequests/{change}/decisions",
        json={**decision, "planDigest": digest},
        params=in_ns,
    )
    assert done.status_code == 201 and done.json()["approver"] == "dev-approver", done.text

    def counted() -> dict[str, Any] | None:
        status = stack.get("changerequests", change, NS).get("status") or {}
        return status if status.get("outcomes") else None

    status = wait_for(counted, 60, what="the controller to count the decision")
    [outcome] = status["outcomes"]
    assert outcome["approver"] == "dev-approver" and outcome["accepted"], outcome
    [record] = stack.get("changerequests", change, NS)["spec"]["decisions"]
    assert record["approver"] == "dev-approver" and record["planDigest"] == digest
    stack.kubectl("patch", "dtask", "gw-risky", "-n", NS, "--type=merge", "-p", '{"spec":{"cancel":true}}')
    assert stack.get("changerequests", "gw-own-cab", served.namespace)["spec"].get("decisions", []) == []


def test_in_kubernetes_mode_the_gateway_writes_with_the_callers_own_token(served: Served, stack: Stack) -> None:
    child, url = spawn_gateway(stack, "gateway-kube", RINGPILOT_GATEWAY_AUTH="kubernetes")
    try:
        passthrough = Served(url, served.tokens, served.namespace)
        me = api(passthrough, "dev-viewer", "GET", "/whoami").json()
        assert (me["user"], me["authenticatedBy"]) == ("dev-viewer", "kubernetes")
        made = api(passthrough, "dev-viewer", "POST", "/conversations", json={"text": "check system health"})
        assert made.status_code == 201, made.text
        name = made.json()["name"]
        conversation = stack.get("conversations", name, served.namespace)
        # the admission webhook saw the caller, not the gateway's ServiceAccount
        assert conversation["metadata"]["annotations"][CREATED_BY_ANNOTATION] == "kubernetes:dev-viewer"
        assert conversation["spec"]["user"] == "dev-viewer"
        events = read_stream(passthrough, "dev-viewer", name, completed("m1"), last_event_id="0")
        assert events[-1]["event"] == "turn.completed"
        refused = api(passthrough, "dev-viewer", "DELETE", f"/conversations/{name}")  # RBAC: viewers may not delete
        assert refused.status_code == 403, refused.text
    finally:
        stop_gateway(stack, child)
    tokens_mode = api(served, "dev-viewer", "GET", f"/conversations/{name}")
    assert tokens_mode.status_code == 200  # any replica, any mode, serves the same conversation


def test_open_streams_and_refused_logins_show_in_the_gateways_metrics(served: Served) -> None:
    assert (
        requests.get(f"{served.url}/api/v1/whoami", headers={"Authorization": "Bearer x"}, timeout=10).status_code
        == 401
    )
    name = api(served, "dev-viewer", "POST", "/conversations", json={}).json()["name"]
    url = f"{served.url}/api/v1/conversations/{name}/events"
    with requests.get(url, headers=served.headers("dev-viewer"), stream=True, timeout=30) as stream:
        lines = stream.iter_lines(decode_unicode=True)  # held open: a dropped iterator closes the connection
        assert next(line for line in lines if line.startswith("event:")) == "event: snapshot"
        scrape = requests.get(f"{served.url}/metrics", timeout=10).text
        assert "ringpilot_gateway_streams 1.0" in scrape
        del lines
    assert 'ringpilot_gateway_auth_failures_total{method="tokens"}' in scrape
