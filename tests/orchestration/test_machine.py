"""The DeploymentTask state machine, driven through the real reconcile with an in-memory world."""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.orchestration.steps import (
    DEPLOY_RING_ACTOR,
    GENERATE_EVIDENCE_ACTOR,
    POLL_RING_ACTOR,
    ROLLBACK_RING_ACTOR,
)
from tests.orchestration.driver import FakeWorker, FakeWorld, Run

HIGH_RISK = {
    "privilegeImpact": "AdminInstall",
    "supplyChainTrust": "Unsigned",
    "exploitability": "ListenerScripting",
    "dataAccess": "CredentialStore",
    "sbomVulnerability": "HighMitigable",
    "operationalComplexity": "Reboot",
    "history": "FewFailures",
}


async def test_a_low_risk_task_runs_through_rings_0_to_2_without_cab() -> None:
    run = Run({})
    await run.until("Succeeded")
    status = run.status
    assert status["progress"] == "3/3"
    assert status["risk"]["score"] < 50
    assert status["approval"]["mode"] == "Auto"
    assert "Auto-approved: risk" in status["approval"]["rule"]
    assert run.step("SubmitChangeRequest")["state"] == "Skipped"
    assert [run.step("Deploy", r)["state"] for r in range(3)] == ["Succeeded"] * 3
    assert [r["gate"] for r in status["rings"]] == ["Passed"] * 3
    assert run.condition("Ready")["status"] == "True"
    assert run.condition("Succeeded")["reason"] == "RolloutSucceeded"
    assert run.condition("Progressing")["status"] == "False"
    assert run.condition("EvidenceVerified")["status"] == "True"
    assert status["evidence"] == {"id": "pack-1", "sha256": "e" * 64}
    assert run.world.change_requests == {}
    # Events for phase changes only (a step starting begins its phase); every milestone is an audit row
    assert run.reasons() == [
        "Accepted",
        "StepStarted",  # GenerateEvidence: Validating
        *["StepStarted", "MonitorStarted"] * 3,  # each ring: Deploying, then Monitoring
        "RolloutSucceeded",
    ]
    audited = run.actions()
    for reason in ("Accepted", "IntentValidated", "EvidenceRecorded", "AutoApproved", "RolloutSucceeded"):
        assert audited.count(reason) == 1, reason
    assert audited.count("RingDeployed") == 3 and audited.count("GatePassed") == 3
    assert all("[correlation cid-1]" in e.message for e in run.events)
    actors = [d.actor for d in run.world.sent]
    assert actors.count(DEPLOY_RING_ACTOR) == 3 and actors.count(GENERATE_EVIDENCE_ACTOR) == 1
    assert run.last is not None and run.last.requeue_after_seconds is None
    keys = {d.key for d in run.world.sent if d.actor == DEPLOY_RING_ACTOR}
    assert keys == {f"cid-1/01234567/Deploy/r{r}/a1" for r in range(3)}


async def test_a_terminal_task_is_left_alone() -> None:
    run = Run({"maxRing": 0})
    await run.until("Succeeded")
    sent = len(run.world.sent)
    outcome = await run.tick()
    assert outcome.status == {} and outcome.events == () and len(run.world.sent) == sent


async def test_a_high_risk_task_submits_a_change_request_and_waits_before_ring_2() -> None:
    run = Run({"risk": HIGH_RISK})
    await run.until("AwaitingApproval")
    status = run.status
    assert status["risk"]["score"] == 65 and status["risk"]["cabFromRing"] == 2
    cr = run.world.change_requests["t1-cab"]
    assert cr["spec"]["planDigest"] == status["plan"]["digest"]
    assert cr["spec"]["requiredApprovals"] == 1 and cr["spec"]["submittedBy"] == "dev-publisher"
    assert cr["spec"]["evidence"] == {"id": "pack-1", "sha256": "e" * 64}
    assert [r["gate"] for r in status["rings"]][:2] == ["Passed", "Passed"]  # rings 0-1 need no CAB
    assert run.condition("Approved")["reason"] == "AwaitingApproval"
    assert run.last is not None and run.last.requeue_after_seconds == 2.0
    run.decide("dev-publisher")  # the submitter
    run.decide("dev-viewer")  # no role
    await run.tick()
    assert run.phase == "AwaitingApproval"
    outcomes = run.world.change_requests["t1-cab"]["status"]["outcomes"]
    assert [o["accepted"] for o in outcomes] == [False, False]
    assert [e.reason for e in run.cr_events].count("DecisionDenied") == 2
    run.decide("dev-approver")
    await run.until("Succeeded")
    assert "ChangeApproved" in run.actions()  # an audit row; the Event is Deploying's StepStarted
    assert run.condition("Approved")["reason"] == "CabApproved"


async def test_an_approval_with_max_ring_1_stops_after_ring_1_with_a_clear_condition() -> None:
    run = Run({"risk": HIGH_RISK})
    await run.until("AwaitingApproval")
    run.decide("dev-approver", maxRing=1, minSuccessRate=0.99)
    await run.until("Stopped")
    stopped = run.condition("Stopped")
    assert stopped is not None and stopped["reason"] == "ApprovalMaxRing"
    assert "limits this change to maxRing 1" in stopped["message"]
    assert run.condition("Succeeded")["reason"] == "StoppedByApproval"
    assert run.condition("Ready")["status"] == "False"
    assert not any(s["name"] == "Deploy" and s.get("ring") == 2 for s in run.status["steps"])


async def test_an_approval_arriving_early_limits_the_rollout_before_ring_2() -> None:
    run = Run({"risk": HIGH_RISK, "maxRing": 2})
    for _ in range(3):
        await run.tick()
    assert run.world.change_requests
    run.decide("dev-approver", maxRing=0)
    await run.until("Stopped", "Succeeded")
    assert run.phase == "Stopped"
    assert "rings 0 run 2.0.0, rings 1, 2 were not deployed" in run.condition("Stopped")["message"]


async def test_no_decision_before_max_wait_ends_expired_with_an_escalation_event() -> None:
    run = Run({"risk": HIGH_RISK, "approval": {"maxWaitSeconds": 60}})
    await run.until("AwaitingApproval")
    await run.until("Expired")
    assert "ApprovalEscalated" in run.reasons()
    escalation = next(e for e in run.events if e.reason == "ApprovalEscalated")
    assert escalation.type == "Warning" and "escalated to the CAB" in escalation.message
    assert run.condition("Approved")["reason"] == "ApprovalExpired"
    assert "ChangeExpired" in [e.reason for e in run.cr_events]


async def test_a_rejection_ends_the_task_rejected() -> None:
    run = Run({"risk": HIGH_RISK})
    await run.until("AwaitingApproval")
    run.decide("dev-approver", "Reject")
    await run.until("Rejected")
    assert run.condition("Approved")["reason"] == "CabRejected"


async def test_a_failed_gate_rolls_back_every_updated_ring_highest_first() -> None:
    def health(ring: int, poll: int) -> tuple[int, int, int, int]:
        return (2, 2, 0, 2) if ring == 1 else (2, 2, 2, 0)

    run = Run({}, worker=FakeWorker(health=health))
    await run.until("RolledBack")
    rollbacks = [d for d in run.world.sent if d.actor == ROLLBACK_RING_ACTOR]
    assert [d.kwargs["ring"] for d in rollbacks] == [1, 0]
    assert {d.kwargs["scope"] for d in rollbacks} == {"task"}
    assert run.condition("Succeeded")["reason"] == "GateFailed"
    assert "Ring 1 failed its gate" in run.condition("Succeeded")["message"]
    assert [r.get("rolledBack", False) for r in run.status["rings"]][:2] == [True, True]
    assert not any(d.kwargs.get("ring") == 2 for d in run.world.sent if d.actor == DEPLOY_RING_ACTOR)
    for reason in ("GateFailed", "RollbackStarted"):  # warnings: Events
        assert reason in run.reasons()
    assert run.actions().count("RingRolledBack") == 2


async def test_a_transient_failure_is_retried_with_backoff_and_attempts_show_in_steps() -> None:
    worker = FakeWorker(
        failures={
            (DEPLOY_RING_ACTOR, 1): (True, "503 from the API"),
            (DEPLOY_RING_ACTOR, 2): (True, "503 from the API"),
        }
    )
    run = Run({"maxRing": 0}, worker=worker)
    await run.until("Succeeded")
    assert run.step("Deploy", 0)["attempts"] == 3
    assert run.reasons().count("StepRetrying") == 2


async def test_a_permanent_failure_fails_the_task_with_the_reason() -> None:
    worker = FakeWorker(failures={(DEPLOY_RING_ACTOR, 1): (False, "Deployment ring-0-lab/shop has no image")})
    run = Run({"maxRing": 0}, worker=worker)
    await run.until("Failed")
    assert "has no image" in run.condition("Succeeded")["message"]
    assert run.step("Deploy", 0)["state"] == "Failed"


async def test_a_silent_worker_is_replaced_by_a_new_attempt_and_a_lost_message_is_resent() -> None:
    worker = FakeWorker(silent={(DEPLOY_RING_ACTOR, 1)}, lost={(GENERATE_EVIDENCE_ACTOR, 1)})
    run = Run({"maxRing": 0}, worker=worker)
    await run.until("Succeeded")
    assert run.step("Deploy", 0)["attempts"] == 2
    assert "StepAbandoned" in run.reasons()
    evidence = [d.key for d in run.world.sent if d.actor == GENERATE_EVIDENCE_ACTOR]
    assert len(evidence) == 2 and len(set(evidence)) == 1  # the same key, enqueued again


async def test_a_step_sent_behind_a_long_queue_is_given_longer_before_it_counts_as_silent() -> None:
    # 3000 steps of other tasks wait in the queue: at 0.1 s each, the Deploy's worker gets 300 s more
    # than the 10 s lease before another attempt starts, and the step is not sent a second time meanwhile
    async def abandoned_after(backlog: int) -> float:
        run = Run({"maxRing": 0}, world=FakeWorld(backlog=backlog), worker=FakeWorker(silent={(DEPLOY_RING_ACTOR, 1)}))
        await run.until("Deploying")
        sent = datetime.fromisoformat(run.step("Deploy", 0)["startedAt"])
        while "StepAbandoned" not in run.reasons():
            at = run.now
            await run.tick()
        return (at - sent).total_seconds()

    quiet, busy = await abandoned_after(0), await abandoned_after(3000)
    assert 10 <= quiet < 15
    assert 310 <= busy < 315


async def test_a_lost_poll_is_replaced() -> None:
    run = Run({"maxRing": 0}, worker=FakeWorker(silent={(POLL_RING_ACTOR, 1)}))
    await run.until("Succeeded")
    assert run.step("Monitor", 0)["attempts"] >= 2


async def test_failing_polls_end_in_health_unavailable() -> None:
    failures = {(POLL_RING_ACTOR, n): (True, "plane down") for n in range(1, 10)}
    run = Run({"maxRing": 0}, worker=FakeWorker(failures=failures))
    await run.until("Failed")
    assert run.condition("Succeeded")["reason"] == "HealthUnavailable"


async def test_cancel_stops_at_the_next_safe_point() -> None:
    run = Run({"risk": HIGH_RISK})
    await run.until("AwaitingApproval")
    run.edit(cancel=True)
    await run.until("Cancelled")
    assert "rings 0, 1 keep the new version" in run.condition("Succeeded")["message"]


async def test_tampered_evidence_stops_the_task() -> None:
    run = Run({"maxRing": 1})
    await run.until("Monitoring")
    run.world.evidence_problem = "hashes to 1234, not its recorded sha256 eeee"
    await run.until("Failed")
    assert run.condition("EvidenceVerified")["reason"] == "EvidenceTampered"
    assert run.condition("Succeeded")["reason"] == "EvidenceTampered"


async def test_the_evidence_pack_is_read_when_it_arrives_before_each_ring_and_before_success_only() -> None:
    run = Run({})
    await run.until("Succeeded")
    # arrival and ring 0's Deploy in one round, rings 1 and 2, then the success: not every reconcile
    assert run.world.evidence_reads == 4
    await run.tick()
    await run.tick()
    assert run.world.evidence_reads == 4  # a finished task reads it no more
    assert run.condition("EvidenceVerified")["status"] == "True"


async def test_evidence_tampered_during_the_last_gate_fails_the_task_instead_of_succeeding() -> None:
    run = Run({"maxRing": 1})
    await run.until("Deploying")
    while not (run.phase == "Monitoring" and run.status.get("currentRing") == 1):
        await run.tick()
    run.world.evidence_problem = "hashes to 1234, not its recorded sha256 eeee"
    await run.until("Failed", "Succeeded")
    assert run.phase == "Failed"
    assert run.condition("Succeeded")["reason"] == "EvidenceTampered"
    assert "RolloutSucceeded" not in run.reasons()


async def test_evidence_tampered_between_rings_sends_no_further_deploy() -> None:
    run = Run({})
    await run.until("Monitoring")
    run.world.evidence_problem = "is missing from the evidence store"
    await run.until("Failed")
    assert [d.key.split("/")[3] for d in run.world.sent if d.actor == DEPLOY_RING_ACTOR] == ["r0"]
    assert run.condition("EvidenceVerified")["message"].endswith("is missing from the evidence store")


async def test_validation_rejects_unknown_apps_conflicts_and_blocked_publishes() -> None:
    unknown = Run({}, world=FakeWorld(targets={}))
    await unknown.until("Failed")
    invalid = unknown.condition("InvalidSpec")
    assert invalid["reason"] == "UnknownApp" and invalid["message"].startswith("spec.app: no kubernetes targets")
    blocked = Run({"risk": {"sbomVulnerability": "Critical"}})
    await blocked.until("Failed")
    assert blocked.condition("InvalidSpec")["reason"] == "PublishBlocked"
    other = {
        "metadata": {
            "uid": "other",
            "name": "first",
            "namespace": "team",
            "creationTimestamp": "2026-11-25T10:00:00Z",
        },
        "spec": {"app": "shop"},
        "status": {"phase": "Deploying"},
    }
    busy = Run({}, world=FakeWorld(tasks=[other]))
    await busy.until("Failed")
    assert busy.condition("InvalidSpec")["reason"] == "ActiveChangeExists"
    assert "team/first is already changing shop" in busy.condition("InvalidSpec")["message"]


async def test_a_rejected_spec_is_judged_again_when_it_changes() -> None:
    world = FakeWorld(targets={})
    run = Run({"maxRing": 0}, world=world)
    await run.until("Failed")
    world.targets = {0: 1}
    run.edit(app="shop")
    await run.until("Succeeded")


async def test_a_change_of_plan_before_approval_regenerates_evidence_and_voids_the_approval() -> None:
    run = Run({"risk": HIGH_RISK})
    await run.until("AwaitingApproval")
    old = run.status["plan"]["digest"]
    run.decide("dev-approver", maxRing=1)
    run.edit(maxRing=3)  # a different plan: more rings, quorum 2
    await run.until("AwaitingApproval", "Stopped")
    await run.tick()
    assert run.status["plan"]["digest"] != old
    assert "PlanChanged" in run.actions()
    cr = run.world.change_requests["t1-cab"]
    assert cr["spec"]["planDigest"] == run.status["plan"]["digest"]
    assert cr["spec"]["requiredApprovals"] == 2
    await run.until("AwaitingApproval")
    run.decide("dev-approver")
    run.decide("cab-2")
    await run.until("Succeeded")
    assert len([d for d in run.world.sent if d.actor == GENERATE_EVIDENCE_ACTOR]) == 2


async def test_an_identity_change_after_deploying_is_refused_with_plan_locked() -> None:
    run = Run({"maxRing": 1})
    await run.until("Monitoring")
    run.edit(version="9.9.9")
    await run.until("Succeeded")
    assert run.condition("PlanLocked")["status"] == "True"
    assert run.status["plan"]["version"] == "2.0.0"
    assert all(d.kwargs.get("version") in (None, "2.0.0") for d in run.world.sent)


async def test_an_action_rollback_task_rolls_back_every_ring_without_cab() -> None:
    run = Run({"action": "Rollback", "maxRing": 1, "risk": HIGH_RISK}, world=FakeWorld(candidates=2))
    await run.until("RolledBack")
    assert run.condition("Succeeded")["status"] == "True"
    assert run.condition("Succeeded")["reason"] == "RollbackCompleted"
    rollbacks = [d for d in run.world.sent if d.actor == ROLLBACK_RING_ACTOR]
    assert [(d.kwargs["ring"], d.kwargs["scope"]) for d in rollbacks] == [(1, "version"), (0, "version")]
    assert run.status["approval"]["rule"].startswith("A rollback is a fast path")
    nothing = Run({"action": "Rollback"})
    await nothing.until("Failed")
    assert nothing.condition("InvalidSpec")["reason"] == "NoRollbackTarget"


async def test_rings_without_targets_are_skipped() -> None:
    run = Run({"maxRing": 2}, world=FakeWorld(targets={0: 1, 2: 1}))
    await run.until("Succeeded")
    assert "RingSkipped" in run.actions()


async def test_windows_hold_a_ring_until_they_open() -> None:
    from controller.api.policy import Policy

    raw = Run({}).policy.model_dump(mode="json", by_alias=True)
    raw["windows"] = [{"name": "noon", "rings": [1], "start": "12:10", "end": "13:00"}]
    run = Run({"maxRing": 1}, policy=Policy.model_validate(raw))
    await run.until("Deploying")
    for _ in range(40):
        await run.tick()
        if run.condition("WaitingForWindow"):
            break
    assert run.condition("WaitingForWindow")["status"] == "True"
    await run.until("Succeeded", ticks=400)
    assert run.now >= run.now.replace(hour=12, minute=10)
    assert run.condition("WaitingForWindow")["status"] == "False"


async def test_without_a_world_the_task_says_it_is_not_orchestrated() -> None:
    run = Run({})
    run.world_enabled = False
    await run.tick()
    assert run.condition("Ready")["reason"] == "NotOrchestrated"
    assert run.world.sent == []


async def test_clock_is_respected_for_backoff() -> None:
    worker = FakeWorker(failures={(GENERATE_EVIDENCE_ACTOR, 1): (True, "db busy")})
    run = Run({"maxRing": 0}, worker=worker)
    start = run.now
    await run.until("Succeeded")
    assert run.now - start >= timedelta(seconds=1)
