"""CAB over HTTP: what `?pending=mine` lists, and decisions bound to the plan digest under separation of duties."""

from __future__ import annotations

from tests.agent import objects
from tests.gateway.conftest import Gw

OTHER_DIGEST = "0" * 64


def names(gw: Gw, user: str, query: str = "?pending=mine") -> list[str]:
    items = gw.as_user(user).get(f"/api/v1/changerequests{query}").json()["items"]
    return [i["name"] for i in items]


def test_pending_mine_lists_only_changes_the_caller_may_decide(gw: Gw) -> None:
    objects.change(gw.cluster, "open-cab", task_name="other")
    objects.change(gw.cluster, "own-cab", task_name="other", submitted_by="dev-approver")
    objects.task(gw.cluster, "payments-2-0-0", app="payments", version="2.0.0", requested_by="dev-approver")
    objects.change(gw.cluster, "task-cab")
    objects.change(gw.cluster, "closed-cab", task_name="other", phase="Approved")
    objects.change(
        gw.cluster, "decided-cab", task_name="other", decisions=[{"approver": "dev-approver", "decision": "Approve"}]
    )
    assert names(gw, "dev-approver") == ["open-cab"]
    assert names(gw, "dev-approver-2") == ["decided-cab", "open-cab", "own-cab", "task-cab"]
    assert names(gw, "dev-publisher") == []  # not an approver
    everything = names(gw, "dev-viewer", "")
    assert everything == ["closed-cab", "decided-cab", "open-cab", "own-cab", "task-cab"]
    [summary] = [
        i for i in gw.as_user("dev-viewer").get("/api/v1/changerequests").json()["items"] if i["name"] == "open-cab"
    ]
    assert summary["planDigest"] == objects.DIGEST and summary["phase"] == "Pending"


def test_an_approver_decides_over_http_and_the_submitter_and_others_are_refused(gw: Gw) -> None:
    objects.change(gw.cluster, "open-cab", task_name="other", submitted_by="dev-publisher", max_ring=2)
    url = "/api/v1/changerequests/open-cab/decisions"
    approve = {"decision": "Approve", "planDigest": objects.DIGEST}
    submitter = gw.as_user("dev-publisher").post(url, json=approve)
    assert submitter.status_code == 403
    assert (
        submitter.json()["error"]["message"]
        == "dev-publisher holds role publisher; deciding a change needs cab-approver"
    )
    viewer = gw.as_user("dev-viewer").post(url, json=approve)
    assert viewer.status_code == 403
    stale = gw.as_user("dev-approver").post(url, json={**approve, "planDigest": OTHER_DIGEST})
    assert stale.status_code == 409 and stale.json()["error"]["field"] == "planDigest"
    beyond = gw.as_user("dev-approver").post(url, json={**approve, "conditions": {"maxRing": 3}})
    assert beyond.status_code == 422 and beyond.json()["error"]["field"] == "conditions.maxRing"
    bad = gw.as_user("dev-approver").post(url, json={"decision": "Maybe", "planDigest": objects.DIGEST})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "decision"
    done = gw.as_user("dev-approver").post(url, json={**approve, "conditions": {"maxRing": 1}, "comment": "canary"})
    assert done.status_code == 201 and done.json() == {"phase": "Pending", "approver": "dev-approver"}
    [record] = gw.cluster.get("changerequests", "open-cab")["spec"]["decisions"]
    assert (record["approver"], record["decision"], record["planDigest"]) == ("dev-approver", "Approve", objects.DIGEST)
    assert record["conditions"]["maxRing"] == 1 and record["comment"] == "canary"
    twice = gw.as_user("dev-approver").post(url, json=approve)
    assert twice.status_code == 409
    assert gw.as_user("dev-approver").post("/api/v1/changerequests/nope/decisions", json=approve).status_code == 404


def test_the_submitter_of_a_change_may_not_decide_it_even_as_an_approver(gw: Gw) -> None:
    objects.change(gw.cluster, "own-cab", task_name="other", submitted_by="dev-approver")
    own = gw.as_user("dev-approver").post(
        "/api/v1/changerequests/own-cab/decisions", json={"decision": "Reject", "planDigest": objects.DIGEST}
    )
    assert own.status_code == 403
    assert own.json()["error"]["message"] == "dev-approver submitted change request own-cab and may not decide it"
    assert gw.cluster.get("changerequests", "own-cab")["spec"]["decisions"] == []
