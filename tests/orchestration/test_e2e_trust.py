"""Issue 12 on the real stack, driven with kubectl as each dev user would: a ChangeRequest's
controller-owned fields cannot be lowered, undeclared risk is scored conservatively, unlisted
registries and mutable tags are refused, an InvalidSpec task ends and blocks nothing, decisions are
not rewritten after the fact, and a ChangeRequest whose task ended is closed."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.stack import Stack, wait_for
from tests.orchestration.test_e2e import (
    HIGH_RISK,
    NS,
    apply_task,
    condition,
    decide,
    events_for,
    new_app,
    phase_of,
    task,
    wait_phase,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ns(stack: Stack) -> str:
    stack.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    )
    return NS


def change_request(stack: Stack, name: str) -> dict[str, object]:
    return stack.get("changerequests", name, NS)


def test_finding_1_a_lowered_quorum_is_refused_and_one_approval_does_not_ship(stack: Stack, ns: str) -> None:
    app = new_app(stack)
    apply_task(stack, "quorum", app=app, maxRing=3, risk=HIGH_RISK, approval={"maxWaitSeconds": 600})
    obj = wait_phase(stack, "quorum", "AwaitingApproval")
    change = obj["status"]["changeRequest"]
    assert change_request(stack, change)["spec"]["requiredApprovals"] == 2
    lowered = stack.kubectl(
        "patch",
        "changerequest",
        change,
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"requiredApprovals": 1}}),
        user="dev-approver",
        check=False,
    )
    assert lowered.returncode != 0 and "spec.requiredApprovals is owned by the controller" in lowered.stderr
    decide(stack, change, "dev-approver")
    wait_for(
        lambda: (change_request(stack, change).get("status") or {}).get("approvals") == 1,
        60,
        0.2,
        "the approval to be counted",
    )
    assert phase_of(stack, "quorum") == "AwaitingApproval"  # one of two approvals ships nothing
    assert change_request(stack, change)["spec"]["requiredApprovals"] == 2
    assert "Tampered" not in {e["reason"] for e in events_for(stack, change)}  # nothing got through to restore
    decide(stack, change, "dev-approver-2")
    assert wait_phase(stack, "quorum", "Succeeded", "Failed", timeout=120)["status"]["phase"] == "Succeeded"


def test_finding_3_undeclared_risk_is_scored_unknown_and_bad_artifacts_are_refused(stack: Stack, ns: str) -> None:
    app = new_app(stack)
    apply_task(stack, "unknown-risk", app=app, maxRing=4, risk={}, approval={"maxWaitSeconds": 600})
    obj = wait_phase(stack, "unknown-risk", "AwaitingApproval")
    assert obj["status"]["risk"]["score"] == 100 and obj["status"]["risk"]["cabRequired"] is True
    assert all(r.get("deployedAt") is None for r in obj["status"]["rings"] if r["ring"] >= 2)  # CAB before Pilot
    stack.kubectl("patch", "dtask", "unknown-risk", "-n", ns, "--type=merge", "-p", '{"spec":{"cancel":true}}')
    wait_phase(stack, "unknown-risk", "Cancelled", "RolledBack", "Stopped", timeout=120)

    other = new_app(stack)
    apply_task(stack, "evil", app=other, maxRing=0, artifact="evil.example.com/x")
    evil = wait_phase(stack, "evil", "Failed")
    invalid = condition(evil, "InvalidSpec")
    assert invalid["reason"] == "RegistryNotAllowed" and "spec.artifact" in invalid["message"]
    apply_task(stack, "mutable", app=other, maxRing=0, version="latest")
    mutable = wait_phase(stack, "mutable", "Failed")
    assert condition(mutable, "InvalidSpec")["reason"] == "MutableTag"
    assert "spec.version" in condition(mutable, "InvalidSpec")["message"]


def test_finding_4_an_invalid_task_ends_failed_shows_why_and_blocks_nothing(stack: Stack, ns: str) -> None:
    app = new_app(stack)
    apply_task(stack, "broken", app=app, maxRing=0, gates=[{"ring": 3, "successThreshold": 0.99}])
    wait_phase(stack, "broken", "Failed")
    row = stack.kubectl("get", "dtask", "broken", "-n", ns).stdout
    assert "Failed" in row and "InvalidSpec" in row and "REASON" in row
    apply_task(stack, "after-broken", app=app, maxRing=0)
    done = wait_phase(stack, "after-broken", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded", done["status"].get("conditions")
    assert "NAMESPACE" in stack.kubectl("get", "assignments", "-n", ns).stdout


def test_finding_6_decisions_are_not_rewritten_and_a_withdrawn_task_closes_its_request(stack: Stack, ns: str) -> None:
    app = new_app(stack)
    apply_task(stack, "rewrite", app=app, maxRing=2, risk=HIGH_RISK, approval={"maxWaitSeconds": 600})
    change = wait_phase(stack, "rewrite", "AwaitingApproval")["status"]["changeRequest"]
    decide(stack, change, "dev-approver", "Reject")
    wait_phase(stack, "rewrite", "Rejected")
    removed = stack.kubectl(
        "patch",
        "changerequest",
        change,
        "-n",
        ns,
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/spec/decisions/0"}]',
        user="dev-approver",
        check=False,
    )
    assert removed.returncode != 0 and "append-only" in removed.stderr
    assert (change_request(stack, change).get("status") or {}).get("phase") == "Rejected"

    second = new_app(stack)
    apply_task(stack, "withdraw", app=second, maxRing=2, risk=HIGH_RISK, approval={"maxWaitSeconds": 600})
    pending = wait_phase(stack, "withdraw", "AwaitingApproval")["status"]["changeRequest"]
    stack.kubectl("patch", "dtask", "withdraw", "-n", ns, "--type=merge", "-p", '{"spec":{"cancel":true}}')
    wait_phase(stack, "withdraw", "Cancelled", "RolledBack", "Stopped", timeout=120)
    wait_for(
        lambda: (change_request(stack, pending).get("status") or {}).get("phase") == "Withdrawn",
        60,
        0.2,
        "the ChangeRequest of the cancelled task to be Withdrawn",
    )
    assert "Withdrawn" in stack.kubectl("get", "chg", pending, "-n", ns).stdout
    assert task(stack, "withdraw")["status"]["phase"] in ("Cancelled", "RolledBack", "Stopped")
