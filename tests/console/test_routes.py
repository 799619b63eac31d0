"""`GET /api/v1/tasks` and `GET /api/v1/traces/{correlationId}` in the gateway app, under TestClient.

The gateway answers from the emulator and PostgreSQL as it does in production; the real turn worker
answers the chat (in the test's loop), so a trace holds the turn, the tool call and the audit rows.
"""

from __future__ import annotations

from agent.gateway.tracerows import HIDDEN
from tests.agent import objects
from tests.agent.conftest import cluster, settings  # noqa: F401  (fixtures of gw)
from tests.fixtures.kube import emulator  # noqa: F401  (fixture of cluster)
from tests.gateway.conftest import Gw, gw  # noqa: F401  (fixture)


def test_tasks_need_a_token_and_list_with_filters(gw: Gw) -> None:  # noqa: F811
    objects.task(gw.cluster, "web-1-4-2")
    objects.task(gw.cluster, "payments-2", app="payments", version="2.0.0")
    refused = gw.client.get("/api/v1/tasks")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "Unauthorized"
    viewer = gw.as_user("dev-viewer")
    listed = viewer.get("/api/v1/tasks").json()["items"]
    assert {t["name"] for t in listed} == {"web-1-4-2", "payments-2"}
    only_web = viewer.get("/api/v1/tasks", params={"app": "web", "namespace": "default"}).json()["items"]
    assert [(t["name"], t["app"], t["namespace"]) for t in only_web] == [("web-1-4-2", "web", "default")]
    invalid = viewer.get("/api/v1/tasks", params={"phase": "Sleeping"})
    assert invalid.status_code == 422 and invalid.json()["error"]["field"] == "phase"


async def test_a_trace_holds_the_turn_and_shows_chat_text_only_to_its_owner(gw: Gw) -> None:  # noqa: F811
    made = gw.as_user("dev-publisher").post("/api/v1/conversations", json={"text": "deploy web 1.4.2 to ring 0"})
    assert made.status_code == 201, made.text
    name, correlation = made.json()["name"], made.json()["correlationId"]
    await gw.answer(name)

    owner = gw.as_user("dev-publisher").get(f"/api/v1/traces/{correlation}")
    assert owner.status_code == 200, owner.text
    trace = owner.json()
    assert trace["correlationId"] == correlation
    assert {"Conversation"} <= {o["kind"] for o in trace["objects"]}
    sources = {e["source"] for e in trace["entries"]}
    assert {"message", "tool", "turn", "object", "audit"} <= sources
    said = next(e for e in trace["entries"] if e["what"] == "user m1")
    assert said["detail"] == "deploy web 1.4.2 to ring 0"
    proposed = next(e for e in trace["entries"] if e["source"] == "audit")
    assert proposed["what"] == "ActionProposed" and proposed["actor"] == "dev-publisher"

    other = gw.as_user("dev-viewer").get(f"/api/v1/traces/{correlation}").json()
    chat = [e for e in other["entries"] if e["source"] in ("message", "tool", "turn")]
    assert chat and all(e["detail"] == HIDDEN for e in chat)
    admin = gw.as_user("dev-admin").get(f"/api/v1/traces/{correlation}").json()
    assert next(e for e in admin["entries"] if e["what"] == "user m1")["detail"] == "deploy web 1.4.2 to ring 0"

    bad = gw.as_user("dev-viewer").get("/api/v1/traces/not%20an%20id")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "correlationId"
    assert gw.client.get(f"/api/v1/traces/{correlation}").status_code == 401
