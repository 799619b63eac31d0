"""The conversation API under TestClient: auth, isolation, turns, idempotency, confirmations, deletes.

The gateway appends to Conversation CRs on the emulator and the real turn worker answers them (in the
test's loop, as a worker process would), so what is checked is what a chat user sees.
"""

from __future__ import annotations

import psycopg

from controller.api.labels import CORRELATION_LABEL
from tests.gateway.conftest import Gw, auth

DEPLOY = "deploy web 1.4.2 to ring 0"


def start(gw: Gw, user: str, text: str | None = DEPLOY) -> dict[str, object]:
    response = gw.as_user(user).post("/api/v1/conversations", json={"text": text} if text else {})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_missing_or_bad_token_is_refused_and_a_good_one_names_the_user_and_role(gw: Gw) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        refused = gw.client.get("/api/v1/whoami", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "Unauthorized"
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    me = gw.client.get("/api/v1/whoami", headers=auth("dev-publisher")).json()
    assert me == {"user": "dev-publisher", "groups": [], "roles": ["publisher"], "authenticatedBy": "token"}
    assert gw.client.get("/api/v1/conversations").status_code == 401
    scrape = gw.client.get("/metrics").text
    assert 'ringpilot_gateway_auth_failures_total{method="tokens"}' in scrape


async def test_a_chat_started_over_http_is_a_conversation_cr_of_the_caller_answered_by_the_worker(gw: Gw) -> None:
    made = start(gw, "dev-publisher")
    assert made["user"] == "dev-publisher" and made["messageId"] == "m1"
    cr = gw.cluster.get("conversations", str(made["name"]))
    assert cr["spec"]["user"] == "dev-publisher"
    assert cr["spec"]["messages"] == [{"id": "m1", "text": DEPLOY}]
    assert cr["metadata"]["labels"][CORRELATION_LABEL] == made["correlationId"]
    await gw.answer(str(made["name"]))
    view = gw.as_user("dev-publisher").get(f"/api/v1/conversations/{made['name']}").json()
    assert view["state"] == "Ready" and view["correlationId"] == made["correlationId"]
    assert view["pending"]["tool"] == "deploy"
    assert [m["role"] for m in view["messages"] if m["role"] != "tool"][:1] == ["user"]
    assert view["messages"][-1]["text"].startswith("I can deploy web 1.4.2")
    assert view["lastEventId"] > 0


async def test_users_see_only_their_own_conversations_and_admins_see_all(gw: Gw) -> None:
    made = start(gw, "dev-publisher", None)
    name = made["name"]
    other = gw.as_user("dev-viewer")
    assert other.get(f"/api/v1/conversations/{name}").status_code == 404
    assert other.post(f"/api/v1/conversations/{name}/messages", json={"text": "hi"}).status_code == 404
    assert other.get(f"/api/v1/conversations/{name}/events").status_code == 404
    assert other.delete(f"/api/v1/conversations/{name}").status_code == 404
    assert name not in [i["name"] for i in other.get("/api/v1/conversations").json()["items"]]
    assert name in [i["name"] for i in gw.as_user("dev-publisher").get("/api/v1/conversations").json()["items"]]
    assert name in [i["name"] for i in gw.as_user("dev-admin").get("/api/v1/conversations").json()["items"]]
    assert gw.as_user("dev-admin").get(f"/api/v1/conversations/{name}").status_code == 200
    missing = other.get("/api/v1/conversations/no-such-chat")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFound"


async def test_the_same_client_message_id_twice_is_one_turn_with_the_same_answer(gw: Gw) -> None:
    name = start(gw, "dev-viewer", None)["name"]
    me = gw.as_user("dev-viewer")
    first = me.post(f"/api/v1/conversations/{name}/messages", json={"id": "k1", "text": "check system health"})
    again = me.post(f"/api/v1/conversations/{name}/messages", json={"id": "k1", "text": "check system health"})
    assert first.status_code == again.status_code == 202
    assert (
        first.json()
        == again.json()
        == {
            "messageId": "k1",
            "eventsUrl": f"/api/v1/conversations/{name}/events?namespace=default",
        }
    )
    assert gw.cluster.get("conversations", name)["spec"]["messages"] == [{"id": "k1", "text": "check system health"}]
    reused = me.post(f"/api/v1/conversations/{name}/messages", json={"id": "k1", "text": "something else"})
    assert reused.status_code == 409 and reused.json()["error"]["field"] == "id"
    await gw.answer(name)
    assert (
        me.post(f"/api/v1/conversations/{name}/messages", json={"id": "k1", "text": "check system health"}).json()[
            "messageId"
        ]
        == "k1"
    )
    with psycopg.connect(gw.harness.pool.conninfo) as conn:
        turns = conn.execute("SELECT count(*) FROM chat_turns WHERE message_id = 'k1'").fetchone()
    assert turns is not None and turns[0] == 1


async def test_a_confirmation_runs_the_proposal_as_the_user_and_a_stale_one_is_a_conflict(gw: Gw) -> None:
    made = start(gw, "dev-publisher")
    name = str(made["name"])
    me = gw.as_user("dev-publisher")
    url = f"/api/v1/conversations/{name}/confirmations"
    assert me.post(url, json={"pendingId": "p-early", "decision": "confirm"}).status_code == 409  # nothing pending
    await gw.answer(name)
    pending = me.get(f"/api/v1/conversations/{name}").json()["pending"]
    stale = me.post(url, json={"pendingId": "p-old", "decision": "confirm"})
    assert stale.status_code == 409
    assert stale.json()["error"] == {
        "code": "Conflict",
        "message": f"Proposal p-old is not pending (the pending one is {pending['pendingId']})",
        "field": "pendingId",
    }
    accepted = me.post(url, json={"pendingId": pending["pendingId"], "decision": "confirm"})
    assert accepted.status_code == 202
    assert me.post(url, json={"pendingId": pending["pendingId"], "decision": "confirm"}).json() == accepted.json()
    assert me.post(url, json={"pendingId": pending["pendingId"], "decision": "decline"}).status_code == 409
    await gw.answer(name)
    view = me.get(f"/api/v1/conversations/{name}").json()
    [link] = view["resources"]
    task = gw.cluster.get("deploymenttasks", link["name"])
    gw.cluster.custom.patch_namespaced_custom_object(
        "ringpilot.dev", "v1alpha1", "default", "deploymenttasks", link["name"], {"spec": {"cancel": True}}
    )
    assert link["kind"] == "DeploymentTask" and view["pending"] is None
    assert task["spec"]["requestedBy"] == "dev-publisher"
    assert task["spec"]["correlationId"] == made["correlationId"]
    assert len(gw.cluster.get("conversations", name)["spec"]["messages"]) == 2


async def test_cancel_declines_the_waiting_proposal_and_otherwise_does_nothing(gw: Gw) -> None:
    name = str(start(gw, "dev-publisher")["name"])
    me = gw.as_user("dev-publisher")
    await gw.answer(name)
    assert me.post(f"/api/v1/conversations/{name}/cancel").json()["cancelled"] == "pending"
    await gw.answer(name)
    view = me.get(f"/api/v1/conversations/{name}").json()
    assert view["pending"] is None and view["messages"][-1]["text"].startswith("OK, I did not deploy web")
    assert me.post(f"/api/v1/conversations/{name}/cancel").json() == {"cancelled": "nothing", "messageId": None}


async def test_deleting_a_conversation_removes_the_cr_and_its_transcript(gw: Gw) -> None:
    made = start(gw, "dev-viewer", "check system health")
    name = str(made["name"])
    uid = gw.cluster.get("conversations", name)["metadata"]["uid"]
    await gw.answer(name)
    me = gw.as_user("dev-viewer")
    assert me.delete(f"/api/v1/conversations/{name}").status_code == 204
    assert me.get(f"/api/v1/conversations/{name}").status_code == 404
    with psycopg.connect(gw.harness.pool.conninfo) as conn:
        rows = conn.execute("SELECT count(*) FROM messages WHERE conversation_id = %s", (uid,)).fetchone()
    assert rows is not None and rows[0] == 0


def test_bodies_over_the_crd_bounds_are_refused_naming_the_field(gw: Gw) -> None:
    name = start(gw, "dev-viewer", None)["name"]
    me = gw.as_user("dev-viewer")
    long = me.post(f"/api/v1/conversations/{name}/messages", json={"text": "x" * 4001})
    assert long.status_code == 422 and long.json()["error"]["field"] == "text"
    empty = me.post("/api/v1/conversations", json={"text": ""})
    assert empty.status_code == 422 and empty.json()["error"]["field"] == "text"
    bad_id = me.post(f"/api/v1/conversations/{name}/messages", json={"id": "-bad id-", "text": "hi"})
    assert bad_id.status_code == 422 and bad_id.json()["error"]["field"] == "id"
    unknown = me.post(f"/api/v1/conversations/{name}/messages", json={"text": "hi", "user": "dev-admin"})
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "user"
    huge = me.post(f"/api/v1/conversations/{name}/messages", content=b"{" + b" " * 70_000 + b"}")
    assert huge.status_code == 413 and huge.json()["error"] == {
        "code": "TooLarge",
        "message": "The request body is larger than 65536 bytes",
        "field": "body",
    }
    chunked = me.post(f"/api/v1/conversations/{name}/messages", content=iter([b'{"text": "', b"x" * 70_000, b'"}']))
    assert chunked.status_code == 413  # no Content-Length: counted as it arrives
    assert gw.cluster.get("conversations", name)["spec"]["messages"] == []


def test_the_list_pages_with_a_cursor(gw: Gw) -> None:
    for _ in range(3):
        start(gw, "dev-operator", None)
    me = gw.as_user("dev-operator")
    first = me.get("/api/v1/conversations", params={"limit": 2}).json()
    second = me.get("/api/v1/conversations", params={"limit": 2, "cursor": first["next"]}).json()
    assert len(first["items"]) == 2 and first["next"] == "2"
    assert len(second["items"]) == 1 and second["next"] is None
    names = {i["name"] for i in first["items"] + second["items"]}
    assert len(names) == 3 and all(i["user"] == "dev-operator" for i in first["items"])
    assert me.get("/api/v1/conversations", params={"cursor": "x"}).status_code == 422
