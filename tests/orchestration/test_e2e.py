"""Acceptance of the DeploymentTask chain (issue 4), end to end: the API emulator with the simulated
kubelet, the real `ringpilot controller` and `ringpilot worker`, real PostgreSQL and Redis, kubectl.

Each scenario ships its own app (Deployments created here in the ring namespaces), so scenarios and
the other suites sharing the session's stack never compete for "one active change per app"."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from typing import Any

import psycopg
import pytest
import yaml

from controller.devkit.seeding import RING_NAMESPACES, SampleApp, configmap_manifest, deployment_manifest
from controller.storage.db import connect
from tests.fixtures.stack import Stack, wait_for

pytestmark = pytest.mark.e2e
NS = "orchestration-e2e"
HIGH_RISK = {
    "privilegeImpact": "AdminInstall",
    "supplyChainTrust": "Unsigned",
    "exploitability": "ListenerScripting",
    "dataAccess": "CredentialStore",
    "sbomVulnerability": "HighMitigable",
    "operationalComplexity": "Reboot",
    "history": "FewFailures",
}
FAST = {"pollIntervalSeconds": 1, "deployTimeoutSeconds": 30}
#: Every risk input declared at its lowest row: an undeclared input scores as Unknown (the riskiest).
LOW_RISK = {
    "privilegeImpact": "UserContext",
    "supplyChainTrust": "SignedKnownProvenance",
    "exploitability": "None",
    "dataAccess": "OwnDirectory",
    "sbomVulnerability": "NoHighOrCritical",
    "operationalComplexity": "OnlineQuick",
    "history": "Clean",
}


@pytest.fixture(scope="module")
def ns(stack: Stack) -> str:
    stack.kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    )
    return NS


def new_app(stack: Stack, rings: range = range(5), version: str = "1.0.0") -> str:
    name = f"app-{uuid.uuid4().hex[:6]}"
    app = SampleApp(name, version, replicas=1)
    for ring in rings:
        namespace = RING_NAMESPACES[ring]
        stack.core.create_namespaced_config_map(namespace, configmap_manifest(app, namespace))
        stack.apps.create_namespaced_deployment(namespace, deployment_manifest(app, namespace))
    return name


def apply_task(stack: Stack, name: str, **spec: Any) -> None:
    doc = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "DeploymentTask",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"version": "2.0.0", "requestedBy": "dev-publisher", "monitor": FAST, "risk": LOW_RISK, **spec},
    }
    stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), user=doc["spec"]["requestedBy"])


def task(stack: Stack, name: str) -> dict[str, Any]:
    return stack.get("deploymenttasks", name, NS)


def phase_of(stack: Stack, name: str) -> str | None:
    return (task(stack, name).get("status") or {}).get("phase")


def wait_phase(stack: Stack, name: str, *phases: str, timeout: float = 90) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = task(stack, name)
        return obj if (obj.get("status") or {}).get("phase") in phases else None

    try:
        return wait_for(probe, timeout, 0.2, f"DeploymentTask {name} to be {'/'.join(phases)}")
    except AssertionError as error:
        status = task(stack, name).get("status") or {}
        raise AssertionError(f"{error}\nstatus: {json.dumps(status, indent=1)[:6000]}") from None


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def image(stack: Stack, app: str, ring: int) -> str:
    deployment = stack.apps.read_namespaced_deployment(app, RING_NAMESPACES[ring])
    return str(deployment.spec.template.spec.containers[0].image)


def generation(stack: Stack, app: str, ring: int) -> int:
    return int(stack.apps.read_namespaced_deployment(app, RING_NAMESPACES[ring]).metadata.generation)


def events_for(stack: Stack, name: str) -> list[dict[str, Any]]:
    out = stack.kubectl("get", "events", "-n", NS, "-o", "json").stdout
    return [e for e in json.loads(out)["items"] if e["involvedObject"]["name"] == name]


def audit_actions(stack: Stack, correlation_id: str) -> list[str]:
    with connect(stack.database_url) as conn:
        rows = conn.execute(
            "SELECT action FROM audit_events WHERE correlation_id = %s ORDER BY id", (correlation_id,)
        ).fetchall()
    return [str(r["action"]) for r in rows]


def decide(
    stack: Stack, change: str, approver: str, decision: str = "Approve", check: bool = True, **conditions: Any
) -> subprocess.CompletedProcess[str]:
    """Append a decision with kubectl as `approver` (the admission webhook stamps who decided)."""
    record: dict[str, Any] = {"approver": approver, "decision": decision}
    if conditions:
        record["conditions"] = conditions
    patch = [{"op": "add", "path": "/spec/decisions/-", "value": record}]
    return stack.kubectl(
        "patch", "changerequest", change, "-n", NS, "--type=json", "-p", json.dumps(patch), user=approver, check=check
    )


def test_a_low_risk_task_runs_to_succeeded_through_rings_0_to_2_without_cab(stack: Stack, ns: str) -> None:
    app = new_app(stack)
    apply_task(stack, "low", app=app, maxRing=2)
    seen: set[str] = set()
    header: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        lines = stack.kubectl("get", "dtask", "low", "-n", ns).stdout.splitlines()
        header, row = lines[0].split(), lines[1]
        seen.update(word for word in row.split() if word in ("Deploying", "Monitoring", "Succeeded"))
        if "Succeeded" in row:
            break
        time.sleep(0.3)
    assert {"Monitoring", "Succeeded"} <= seen, seen
    for column in ("PHASE", "STEP", "PROGRESS", "RING", "RISK"):
        assert column in header
    assert "3/3" in stack.kubectl("get", "dtask", "low", "-n", ns).stdout
    obj = task(stack, "low")
    assert condition(obj, "Ready")["status"] == "True"
    assert obj["status"]["approval"]["mode"] == "Auto"
    assert obj["status"].get("changeRequest") is None
    assert [image(stack, app, r).rsplit(":", 1)[1] for r in range(5)] == ["2.0.0"] * 3 + ["1.0.0"] * 2
    assignments = stack.custom.list_namespaced_custom_object(
        "ringpilot.dev", "v1alpha1", ns, "assignments", label_selector=f"ringpilot.dev/app={app}"
    )["items"]
    assert sorted((a["spec"]["ring"], a["spec"]["target"]["name"], a["spec"]["version"]) for a in assignments) == [
        (0, app, "2.0.0"),
        (1, app, "2.0.0"),
        (2, app, "2.0.0"),
    ]
    correlation = obj["metadata"]["labels"]["ringpilot.dev/correlation-id"]
    reasons = [e["reason"] for e in events_for(stack, "low")]
    assert {"Accepted", "StepStarted", "MonitorStarted", "RolloutSucceeded"} <= set(reasons)
    assert reasons.count("MonitorStarted") == 3  # Events for phase changes: each ring's Monitoring began once
    assert not {"RingDeployed", "GatePassed", "IntentValidated"} & set(reasons)  # milestones are audit rows
    assert all(correlation in e["message"] for e in events_for(stack, "low"))
    actions = audit_actions(stack, correlation)
    assert {"IntentValidated", "EvidenceRecorded", "AutoApproved", "RolloutSucceeded", "StepFinished"} <= set(actions)
    assert actions.count("RingDeployed") == 3 and actions.count("GatePassed") == 3

    # action: Rollback returns the app to its previous recorded version, without CAB.
    apply_task(stack, "low-back", app=app, maxRing=2, action="Rollback")
    back = wait_phase(stack, "low-back", "RolledBack", "Failed")
    assert condition(back, "Succeeded")["reason"] == "RollbackCompleted", back["status"]
    assert [image(stack, app, r).rsplit(":", 1)[1] for r in range(3)] == ["1.0.0"] * 3


def test_a_high_risk_task_waits_for_cab_refuses_self_approval_and_stops_at_the_approved_ring(
    stack: Stack, ns: str
) -> None:
    app = new_app(stack)
    apply_task(stack, "high", app=app, maxRing=2, risk=HIGH_RISK, approval={"maxWaitSeconds": 600})
    obj = wait_phase(stack, "high", "AwaitingApproval")
    change = obj["status"]["changeRequest"]
    cr = stack.get("changerequests", change, ns)
    assert cr["spec"]["planDigest"] == obj["status"]["plan"]["digest"]
    assert cr["spec"]["riskScore"] == 65 and cr["spec"]["submittedBy"] == "dev-publisher"
    assert "AwaitingApproval" in stack.kubectl("get", "dtask", "high", "-n", ns).stdout
    refused = decide(stack, change, "dev-publisher", check=False)  # self-approval: refused at once (RBAC)
    assert refused.returncode != 0 and 'User "dev-publisher" cannot patch resource "changerequests"' in refused.stderr
    assert stack.get("changerequests", change, ns)["spec"]["decisions"] == []
    assert phase_of(stack, "high") == "AwaitingApproval"
    decide(stack, change, "dev-approver", maxRing=1)
    done = wait_phase(stack, "high", "Stopped", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Stopped"
    stopped = condition(done, "Stopped")
    assert stopped["reason"] == "ApprovalMaxRing" and "maxRing 1" in stopped["message"]
    assert condition(done, "Succeeded")["reason"] == "StoppedByApproval"
    assert [image(stack, app, r).rsplit(":", 1)[1] for r in range(3)] == ["2.0.0", "2.0.0", "1.0.0"]


def test_no_decision_before_max_wait_ends_expired_with_an_escalation_event(stack: Stack, ns: str) -> None:
    app = new_app(stack)
    apply_task(stack, "expiring", app=app, maxRing=2, risk=HIGH_RISK, approval={"maxWaitSeconds": 8})
    done = wait_phase(stack, "expiring", "Expired", "Failed", "Succeeded")
    assert done["status"]["phase"] == "Expired"
    assert condition(done, "Approved")["reason"] == "ApprovalExpired"
    escalation = [e for e in events_for(stack, "expiring") if e["reason"] == "ApprovalEscalated"]
    assert escalation and escalation[0]["type"] == "Warning"
    late = done["status"]["changeRequest"]
    wait_for(
        lambda: (stack.get("changerequests", late, ns).get("status") or {}).get("phase") == "Expired",
        30,
        0.2,
        "the ChangeRequest to expire",
    )
    decide(stack, late, "dev-approver")
    refused = wait_for(
        lambda: (stack.get("changerequests", late, ns)["status"].get("outcomes") or [None])[-1],
        30,
        0.2,
        "the late decision to be judged",
    )
    assert refused["reason"] == "Refused: the ChangeRequest is already Expired"


def test_failures_in_ring_1_fail_its_gate_and_roll_back_rings_0_and_1(stack: Stack, ns: str) -> None:
    app = new_app(stack)
    stack.apps.patch_namespaced_deployment(
        app,
        RING_NAMESPACES[1],
        {
            "metadata": {
                "annotations": {
                    "kubelet.ringpilot.dev/fail": "CrashLoop",
                    "kubelet.ringpilot.dev/fail-version": "2.0.0",
                }
            }
        },
    )
    apply_task(stack, "failing", app=app, maxRing=2, monitor={**FAST, "deployTimeoutSeconds": 10})
    done = wait_phase(stack, "failing", "RolledBack", "Failed", "Succeeded")
    assert done["status"]["phase"] == "RolledBack", done["status"]
    assert condition(done, "Succeeded")["reason"] == "GateFailed"
    assert [image(stack, app, r).rsplit(":", 1)[1] for r in range(3)] == ["1.0.0"] * 3
    assert generation(stack, app, 2) == 1  # ring 2 was never touched
    rings = {r["ring"]: r for r in done["status"]["rings"]}
    assert rings[0]["rolledBack"] and rings[1]["rolledBack"] and rings[1]["gate"] == "Failed"
    reasons = [e["reason"] for e in events_for(stack, "failing")]
    assert "RollbackStarted" in reasons  # a warning: an Event; each ring rolled back is an audit row
    actions = audit_actions(stack, done["metadata"]["labels"]["ringpilot.dev/correlation-id"])
    assert actions.count("RingRolledBack") >= 1


def test_killing_the_worker_during_deploy_and_the_controller_during_monitor_still_succeeds_once(
    stack: Stack, ns: str
) -> None:
    app = new_app(stack, rings=range(3))
    extra = [f"{app}-{i}" for i in range(2, 6)]  # ring 0 gets 5 workloads, each to be patched exactly once
    for name in extra:
        manifest = deployment_manifest(SampleApp(app, "1.0.0", replicas=1), RING_NAMESPACES[0])
        manifest["metadata"]["name"] = name
        stack.apps.create_namespaced_deployment(RING_NAMESPACES[0], manifest)
    workloads = [app, *extra]

    def ring_0_images() -> list[str]:
        items = stack.apps.list_namespaced_deployment(
            RING_NAMESPACES[0], label_selector=f"app.kubernetes.io/name={app}"
        )
        return [d.spec.template.spec.containers[0].image.rsplit(":", 1)[1] for d in items.items]

    # Hold ring 0's Deploy inside the worker: it patches every workload, then waits to write its rollout
    # history (only Deploy and Rollback steps write that table; reads still pass a SHARE lock).
    holder = psycopg.connect(stack.database_url)
    try:
        holder.execute("LOCK TABLE rollout_history IN SHARE MODE")
        apply_task(stack, "resilient", app=app, maxRing=2, monitor={"pollIntervalSeconds": 1, "soakSeconds": 3})

        def deploy_held() -> bool:
            row = holder.execute(
                "SELECT count(*) FROM pg_locks WHERE relation = 'rollout_history'::regclass AND NOT granted"
            ).fetchone()
            return bool(row and row[0]) and set(ring_0_images()) == {"2.0.0"}

        wait_for(deploy_held, 60, 0.05, "ring 0's Deploy to patch every workload and wait on its history")
        assert phase_of(stack, "resilient") == "Deploying"
        stack.stop_worker(signal.SIGKILL)
    finally:
        holder.rollback()
        holder.close()
    time.sleep(1)
    stack.start_worker()

    def monitoring_ring_1() -> bool:
        status = task(stack, "resilient").get("status") or {}
        return status.get("phase") == "Monitoring" and status.get("currentRing") == 1

    wait_for(monitoring_ring_1, 120, 0.1, "Monitor of ring 1")
    stack.stop_controller(signal.SIGKILL)
    time.sleep(1)
    stack.start_controller()
    done = wait_phase(stack, "resilient", "Succeeded", "Failed", "RolledBack", timeout=120)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    ring_0 = stack.apps.list_namespaced_deployment(RING_NAMESPACES[0], label_selector=f"app.kubernetes.io/name={app}")
    assert sorted(d.metadata.name for d in ring_0.items) == sorted(workloads)
    assert {d.metadata.generation for d in ring_0.items} == {2}  # each workload patched once, across two attempts
    assert [generation(stack, app, r) for r in (1, 2)] == [2, 2]
    assert set(ring_0_images()) == {"2.0.0"}
    deploy_0 = next(s for s in done["status"]["steps"] if s["name"] == "Deploy" and s.get("ring") == 0)
    assert deploy_0["attempts"] >= 2, deploy_0  # the dead worker's attempt was replaced
    reasons = [e["reason"] for e in events_for(stack, "resilient")]
    assert reasons.count("RolloutSucceeded") == 1 and reasons.count("MonitorStarted") == 3, reasons


def test_bad_input_is_rejected_with_a_condition_naming_the_problem(stack: Stack, ns: str) -> None:
    bad_tag = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "DeploymentTask",
        "metadata": {"name": "bad-tag", "namespace": ns},
        "spec": {"app": "web", "version": "not a tag!", "maxRing": 1},
    }
    result = stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(bad_tag), check=False)
    assert result.returncode != 0 and "spec.version" in result.stderr
    apply_task(stack, "ghost", app="no-such-app", maxRing=1)
    ghost = wait_phase(stack, "ghost", "Failed")
    assert condition(ghost, "InvalidSpec")["reason"] == "UnknownApp"
    assert condition(ghost, "InvalidSpec")["message"].startswith("spec.app: no kubernetes targets")
    app = new_app(stack, rings=range(2))
    apply_task(stack, "first", app=app, maxRing=1, monitor={**FAST, "soakSeconds": 20})
    wait_phase(stack, "first", "Deploying", "Monitoring")
    apply_task(stack, "second", app=app, maxRing=1)
    second = wait_phase(stack, "second", "Failed")
    assert condition(second, "InvalidSpec")["reason"] == "ActiveChangeExists"
    assert f"{ns}/first is already changing {app}" in condition(second, "InvalidSpec")["message"]

    # Tampering with the first task's evidence pack stops it.
    evidence = task(stack, "first")["status"]["evidence"]["id"]
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE evidence_packs DISABLE TRIGGER evidence_packs_immutable")
        conn.execute(
            "UPDATE evidence_packs SET body = jsonb_set(body, '{policyVersion}', '\"forged\"') WHERE id = %s",
            (evidence,),
        )
        conn.execute("ALTER TABLE evidence_packs ENABLE TRIGGER evidence_packs_immutable")
    tampered = wait_phase(stack, "first", "Failed", "Succeeded")
    assert condition(tampered, "EvidenceVerified")["reason"] == "EvidenceTampered"


async def test_the_task_orchestrator_creates_a_task_and_its_handle_follows_it(stack: Stack, ns: str) -> None:
    from controller.api.deploymenttask import DeploymentTaskSpec, TaskPhase
    from controller.kube.client import ApiException, CustomObjects
    from controller.kube.orchestrator import TaskOrchestrator

    app = new_app(stack, rings=range(1))
    orchestrator = TaskOrchestrator(CustomObjects(stack.as_user("dev-publisher")), ns)
    spec = DeploymentTaskSpec.model_validate(
        {"app": app, "version": "2.0.0", "maxRing": 0, "requestedBy": "dev-publisher", "monitor": FAST}
    )
    handle = await orchestrator.orchestrate_deployment("via-api", "corr-via-api", spec)
    again = await orchestrator.orchestrate_deployment("via-api", "corr-via-api", spec)  # idempotent
    assert again == handle
    with pytest.raises(ApiException):  # the name is taken by another intent
        await orchestrator.orchestrate_deployment("via-api", "corr-someone-else", spec)
    status = await handle.wait(timeout_seconds=60, poll_seconds=0.3)
    assert status.phase is TaskPhase.SUCCEEDED
    assert status.correlation_id == "corr-via-api"
    assert "RolloutSucceeded" in audit_actions(stack, "corr-via-api")
