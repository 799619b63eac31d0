"""The mutating tools and the registry: permission checks in code, proposals, exactly-once execution as the
user, deterministic names, separation of duties, and failures returned as results (never raised)."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import pytest

from agent.errors import ToolError
from agent.llm.base import ToolCall
from agent.tools.base import Tool, ToolContext, ToolInput, ToolOutput
from agent.tools.registry import Invocation, ToolRegistry
from controller.api.conversation import PendingAction
from controller.api.labels import CORRELATION_LABEL
from controller.api.policy import Permission
from controller.kube.client import ApiException
from controller.storage.audit import audit_trail
from tests.agent import objects
from tests.agent.conftest import Harness


async def propose(harness: Harness, tool: str, user: str, **arguments: Any) -> Invocation:
    call = ToolCall(id=f"t-{uuid.uuid4().hex[:8]}", name=tool, arguments=arguments)
    return await harness.registry.invoke(call, harness.context(user), turn_id="m1")


async def confirm(harness: Harness, proposal: PendingAction | None, user: str) -> Invocation:
    assert proposal is not None
    return await harness.registry.execute(proposal, harness.context(user))


async def test_deploy_is_proposed_then_created_once_as_the_user_with_the_correlation_id(harness: Harness) -> None:
    proposed = await propose(harness, "deploy", "dev-publisher", app="web", version="1.4.2", max_ring=1)
    assert proposed.outcome == "proposed" and harness.cluster.list("deploymenttasks") == []
    assert proposed.proposal is not None and proposed.proposal.arguments == {
        "app": "web",
        "version": "1.4.2",
        "max_ring": 1,
    }
    assert "now running 1.4.1" in proposed.proposal.summary
    done = await confirm(harness, proposed.proposal, "dev-publisher")
    again = await confirm(harness, proposed.proposal, "dev-publisher")
    assert done.outcome == again.outcome == "executed" and again.output.text == done.output.text
    [created] = harness.cluster.list("deploymenttasks")
    assert created["metadata"]["labels"] == {CORRELATION_LABEL: "corr-c"}
    assert (created["spec"]["requestedBy"], created["spec"]["correlationId"]) == ("dev-publisher", "corr-c")
    assert [r.name for r in done.output.resources] == [created["metadata"]["name"]]
    actions = [e.action for e in await audit_trail(harness.pool, "corr-c")]
    assert actions == ["ActionProposed", "ActionExecuted"]


async def test_a_retry_after_a_crash_mid_effect_finds_the_object_and_creates_no_duplicate(harness: Harness) -> None:
    proposed = await propose(harness, "submit_cab", "dev-publisher", app="payments", version="2.0.0")
    assert proposed.proposal is not None
    tool = harness.registry.tools["submit_cab"]
    await tool.execute(tool.parse(proposed.proposal.arguments), harness.context("dev-publisher"), proposed.proposal.id)
    done = await confirm(harness, proposed.proposal, "dev-publisher")  # the claim was never taken: runs again
    assert done.outcome == "executed" and len(harness.cluster.list("deploymenttasks")) == 1


async def test_permissions_are_checked_in_code_and_audited(harness: Harness) -> None:
    denied = await propose(harness, "deploy", "dev-viewer", app="web", version="1.4.2", max_ring=1)
    assert denied.outcome == "denied" and denied.is_error
    assert denied.output.text == (
        "Permission denied: deploy needs the `deploy` permission, and your role `viewer` has only: read."
    )
    approver = await propose(harness, "deploy", "dev-approver", app="web", version="1.4.2", max_ring=1)
    assert "needs the `deploy` permission" in approver.output.text
    admin = await propose(harness, "decide_change", "dev-admin", decision="Approve")
    assert admin.outcome == "denied"
    proposal = (await propose(harness, "deploy", "dev-publisher", app="web", version="1.4.2", max_ring=1)).proposal
    assert (await confirm(harness, proposal, "dev-viewer")).outcome == "denied"
    assert harness.cluster.list("deploymenttasks") == []
    assert [e.action for e in await audit_trail(harness.pool, "corr-c")].count("PermissionDenied") == 4


async def test_bad_calls_become_error_results(harness: Harness) -> None:
    unknown = await propose(harness, "format_disk", "dev-admin")
    assert unknown.outcome == "error" and unknown.output.text.startswith("There is no tool named format_disk.")
    invalid = await propose(harness, "deploy", "dev-publisher", app="Web!", version="1.0", max_ring=9, force=True)
    assert invalid.outcome == "error" and invalid.output.text.startswith("Invalid arguments for deploy: app:")
    nowhere = await propose(harness, "deploy", "dev-publisher", app="ghost", version="1.0", max_ring=1)
    assert nowhere.output.text == "No workload of an app named ghost runs in any ring, so there is nothing to update."
    ctx = harness.context("dev-publisher")
    first = await harness.registry.invoke(
        ToolCall(id="a", name="deploy", arguments={"app": "web", "version": "1.4.2", "max_ring": 1}),
        ctx,
        turn_id="m1",
        proposals=1,
    )
    assert first.output.text.startswith("Only one action can wait for confirmation")


class Boom(Tool[ToolInput]):
    name: ClassVar[str] = "boom"
    description: ClassVar[str] = "fails"
    input_model = ToolInput
    permission = Permission.READ
    mutating: ClassVar[bool] = False

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def run(self, args: ToolInput, ctx: ToolContext) -> ToolOutput:
        raise self.error


class Act(Boom):
    name: ClassVar[str] = "act"
    mutating: ClassVar[bool] = True

    async def plan(self, args: ToolInput, ctx: ToolContext) -> Any:
        from agent.tools.base import Plan

        return Plan("act")

    async def execute(self, args: ToolInput, ctx: ToolContext, action_id: str) -> ToolOutput:
        raise self.error


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (RuntimeError("bug"), "The boom tool failed unexpectedly (RuntimeError)."),
        (ApiException(status=503, reason="Unavailable"), "The Kubernetes API failed (HTTP 503: Unavailable)."),
        (ToolError("expected"), "expected"),
    ],
)
async def test_a_failing_tool_never_crashes_the_turn(harness: Harness, error: Exception, text: str) -> None:
    registry = ToolRegistry((Boom(error), Act(error)))
    ctx = harness.context("dev-viewer")
    result = await registry.invoke(ToolCall(id="x", name="boom"), ctx, turn_id="m1")
    assert (result.outcome, result.output.text) == ("error", text)
    proposal = (await registry.invoke(ToolCall(id="y", name="act"), ctx, turn_id="m1")).proposal
    assert proposal is not None
    failed = await registry.execute(proposal, ctx)
    assert failed.outcome == "error" and failed.output.text == text.replace("boom tool", "act action")


async def test_decisions_respect_separation_of_duties_and_bind_to_the_plan(harness: Harness) -> None:
    objects.change(harness.cluster, "mine-cab", submitted_by="dev-approver")
    own = await propose(harness, "decide_change", "dev-approver", change_request="mine-cab", decision="Approve")
    assert own.output.text == "You submitted change request mine-cab; someone else must approve or reject it."
    objects.task(harness.cluster, "payments-2-0-0", app="payments", version="2.0.0", requested_by="dev-approver")
    objects.change(harness.cluster, "task-cab", submitted_by="dev-publisher")
    requester = await propose(harness, "decide_change", "dev-approver", change_request="task-cab", decision="Reject")
    assert requester.output.text.startswith("You requested task payments-2-0-0")
    objects.change(harness.cluster, "open-cab", task_name="other", max_ring=2)
    beyond = await propose(
        harness, "decide_change", "dev-approver", change_request="open-cab", decision="Approve", max_ring=3
    )
    assert beyond.output.text == "Ring 3 is beyond the plan's highest ring 2."
    several = await propose(harness, "decide_change", "dev-approver", decision="Approve")
    assert several.output.text.startswith("Several pending change requests match:")
    proposed = await propose(
        harness,
        "decide_change",
        "dev-approver",
        change_request="open-cab",
        decision="Approve",
        max_ring=1,
        min_success_rate=0.99,
        comment="canary only",
    )
    assert proposed.proposal is not None
    assert proposed.proposal.arguments["plan_digest"] == objects.DIGEST
    assert proposed.proposal.summary.endswith(
        "as dev-approver with conditions: only up to ring 1 (Canary), at least 99.0% success in every ring"
    )
    done = await confirm(harness, proposed.proposal, "dev-approver")
    assert done.output.text.startswith("Approved change request open-cab as dev-approver")
    await confirm(harness, proposed.proposal, "dev-approver")
    decisions = harness.cluster.get("changerequests", "open-cab")["spec"]["decisions"]
    assert len(decisions) == 1
    record = decisions[0]
    assert (record["approver"], record["decision"], record["planDigest"]) == ("dev-approver", "Approve", objects.DIGEST)
    assert record["conditions"] == {"maxRing": 1, "minSuccessRate": 0.99, "windows": []}
    again = await propose(harness, "decide_change", "dev-approver", change_request="open-cab", decision="Reject")
    assert again.output.text == "You have already decided change request open-cab."
    objects.change(harness.cluster, "closed-cab", phase="Approved")
    closed = await propose(harness, "decide_change", "dev-approver", change_request="closed-cab", decision="Reject")
    assert closed.output.text == "Change request closed-cab is already Approved."
    missing = await propose(harness, "decide_change", "dev-approver", change_request="nope", decision="Reject")
    assert missing.output.text == "There is no change request named nope."


async def test_remediation_targets_resolve_and_a_busy_target_is_refused(harness: Harness) -> None:
    objects.assignment(harness.cluster, "web-ring-0", drift="VersionMismatch")
    objects.assignment(harness.cluster, "web-ring-1", ring=1, namespace_ring="ring-1-canary")
    by_path = await propose(harness, "execute_remediation", "dev-operator", target="ring-0-lab/web")
    assert by_path.proposal is not None and by_path.proposal.arguments["target"] == "web-ring-0"
    assert by_path.proposal.summary.startswith("fix VersionMismatch drift of web-ring-0 (web in ring 0)")
    by_app = await propose(harness, "execute_remediation", "dev-operator", app="web")
    assert by_app.proposal is not None and by_app.proposal.arguments["target"] == "web-ring-0"  # the drifted one
    done = await confirm(harness, by_path.proposal, "dev-operator")
    [created] = harness.cluster.list("remediations")
    assert done.output.resources[0].name == created["metadata"]["name"]
    assert (created["spec"]["assignment"], created["spec"]["requestedBy"]) == ("web-ring-0", "dev-operator")
    assert created["metadata"]["labels"][CORRELATION_LABEL] == "corr-c"
    busy = await propose(harness, "execute_remediation", "dev-operator", target="web-ring-0")
    assert busy.output.text == f"Remediation {created['metadata']['name']} is already working on web-ring-0."
    none = await propose(harness, "execute_remediation", "dev-operator", target="nothing-here")
    assert none.output.text.startswith("No assignment matches target nothing-here.")
    nothing = await propose(harness, "execute_remediation", "dev-operator", app="payments", ring=3)
    assert nothing.output.text.startswith("No assignment matches payments in ring 3")
    publisher = await propose(harness, "execute_remediation", "dev-publisher", target="web-ring-1")
    assert publisher.outcome == "denied"


async def test_restart_picks_the_failed_service(harness: Harness) -> None:
    none = await propose(harness, "restart_service", "dev-operator")
    assert none.output.text == "No service is down right now; name the one to restart (e.g. web in ring 0)."
    objects.assignment(harness.cluster, "payments-ring-0", app="payments", drift="ServiceDown")
    objects.assignment(harness.cluster, "web-ring-0")
    proposed = await propose(harness, "restart_service", "dev-operator")
    assert proposed.proposal is not None and proposed.proposal.arguments == {"target": "payments-ring-0"}
    await confirm(harness, proposed.proposal, "dev-operator")
    [created] = harness.cluster.list("remediations")
    assert (created["spec"]["driftType"], created["spec"]["action"]) == ("ServiceDown", "Restart")
    named = await propose(harness, "restart_service", "dev-operator", app="web", ring=0)
    assert named.proposal is not None and named.proposal.arguments["target"] == "web-ring-0"


async def test_restart_of_an_unmanaged_failing_workload_explains_why_not(harness: Harness) -> None:
    from kubernetes import client

    client.AppsV1Api(harness.cluster.admin).patch_namespaced_deployment(
        "web", "ring-2-pilot", {"metadata": {"annotations": {"kubelet.ringpilot.dev/fail": "NeverReady"}}}
    )
    for _ in range(100):
        result = await propose(harness, "restart_service", "dev-operator")
        if "not ready" in result.output.text:
            break
    assert result.output.text == "ring-2-pilot/web is not ready, but no Assignment manages it, so I cannot restart it."


async def test_rollback_undoes_the_latest_rollout(harness: Harness) -> None:
    from_workloads = await propose(harness, "rollback_deployment", "dev-operator", app="web")
    assert from_workloads.proposal is not None and from_workloads.proposal.arguments["max_ring"] == 4
    objects.task(harness.cluster, "web-1-4-2", currentRing=1, startedAt="2026-05-01T00:00:00Z")
    proposed = await propose(harness, "rollback_deployment", "dev-operator", app="web", to_version="1.4.1")
    assert proposed.proposal is not None
    assert proposed.proposal.summary == (
        "roll web back from 1.4.2 to 1.4.1 in rings 0-1 (up to ring 1 (Canary)), requested by dev-operator"
    )
    await confirm(harness, proposed.proposal, "dev-operator")
    rollback = next(t for t in harness.cluster.list("deploymenttasks") if t["spec"]["action"] == "Rollback")
    assert (rollback["spec"]["version"], rollback["spec"]["maxRing"], rollback["spec"]["requestedBy"]) == (
        "1.4.2",
        1,
        "dev-operator",
    )
    same = await propose(harness, "rollback_deployment", "dev-operator", app="web", to_version="1.4.2")
    assert same.output.text == "web 1.4.2 is the version being rolled back, not the one it returns to."
    ghost = await propose(harness, "rollback_deployment", "dev-operator", app="ghost")
    assert ghost.output.text.startswith("No workload of an app named ghost")


async def test_cancel_picks_the_failing_task_and_is_idempotent(harness: Harness) -> None:
    assert (await propose(harness, "cancel_task", "dev-publisher")).output.text == "No deployment task is running."
    objects.task(harness.cluster, "healthy-task")
    objects.task(harness.cluster, "failing-task", steps=[{"name": "Monitor", "state": "Failed"}])
    objects.task(harness.cluster, "done-task", phase="Succeeded")
    proposed = await propose(harness, "cancel_task", "dev-publisher")
    assert proposed.proposal is not None and proposed.proposal.arguments == {"task": "failing-task"}
    await confirm(harness, proposed.proposal, "dev-publisher")
    await confirm(harness, proposed.proposal, "dev-publisher")
    assert harness.cluster.get("deploymenttasks", "failing-task")["spec"]["cancel"] is True
    again = await propose(harness, "cancel_task", "dev-publisher", task="failing-task")
    assert again.output.text == "Task failing-task is already being cancelled."
    done = await propose(harness, "cancel_task", "dev-publisher", task="done-task")
    assert done.output.text == "Task done-task has already finished (Succeeded)."
    operator = await propose(harness, "cancel_task", "dev-operator", task="healthy-task")
    assert operator.outcome == "denied"


def test_tool_specs_are_built_once_and_match_each_tools_input_model() -> None:
    registry = ToolRegistry()
    first = registry.specs()
    assert registry.specs() is first  # not rebuilt on every model round
    for spec in first:
        assert spec.input_schema == registry.tools[spec.name].schema()


def test_every_tool_has_a_schema_a_permission_and_a_flag() -> None:
    registry = ToolRegistry()
    specs = {s.name: s for s in registry.specs()}
    assert set(specs) == {
        "query_deployments",
        "check_status",
        "list_failed_targets",
        "check_health",
        "list_circuit_breakers",
        "list_integration_failures",
        "execute_remediation",
        "restart_service",
        "rollback_deployment",
        "submit_cab",
        "list_pending_approvals",
        "decide_change",
        "list_tasks",
        "cancel_task",
        "deployment_history",
        "deploy",
    }
    assert all(s.input_schema["type"] == "object" and s.description for s in specs.values())
    mutating = {name for name, tool in registry.tools.items() if tool.mutating}
    assert mutating == {
        "execute_remediation",
        "restart_service",
        "rollback_deployment",
        "submit_cab",
        "decide_change",
        "cancel_task",
        "deploy",
    }
    assert {registry.tools[n].permission for n in mutating} == {
        Permission.REMEDIATE,
        Permission.RESTART,
        Permission.ROLLBACK,
        Permission.SUBMIT_CAB,
        Permission.APPROVE,
        Permission.CANCEL,
        Permission.DEPLOY,
    }
    assert specs["deploy"].input_schema["additionalProperties"] is False


async def test_creation_conflicts_and_refusals_by_the_api_are_reported(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.tools.creating import create_remediation, create_task
    from controller.api.deploymenttask import DeploymentTaskSpec
    from controller.api.remediation import RemediationSpec
    from controller.kube.client import CustomObjects

    ctx = harness.context("dev-operator")
    await create_remediation(ctx, "a1", "default", RemediationSpec(assignment="web-ring-0"))
    other = harness.context("dev-operator", name="other")
    other = ToolContext(**{**other.__dict__, "conversation_uid": ctx.conversation_uid})
    with pytest.raises(ToolError, match="belongs to another conversation"):
        await create_remediation(other, "a1", "default", RemediationSpec(assignment="web-ring-0"))
    with pytest.raises(ToolError, match="I could not create Remediation"):
        await create_remediation(ctx, "a2", "no-such-namespace", RemediationSpec(assignment="web-ring-0"))
    lost = ToolContext(**{**ctx.__dict__, "namespace": "no-such-namespace"})
    with pytest.raises(ToolError, match="I could not create DeploymentTask"):
        await create_task(lost, "a3", DeploymentTaskSpec(app="web", version="1.0.0", max_ring=0))
    objects.change(harness.cluster, "open-cab", task_name="other")
    proposal = (
        await propose(harness, "decide_change", "dev-approver", change_request="open-cab", decision="Reject")
    ).proposal
    patch = CustomObjects.patch
    conflicts = {"left": 1}

    async def conflict_once(self: CustomObjects, *args: Any) -> Any:
        if conflicts["left"]:
            conflicts["left"] -= 1
            raise ApiException(status=409, reason="Conflict")
        return await patch(self, *args)

    monkeypatch.setattr(CustomObjects, "patch", conflict_once)
    assert (await confirm(harness, proposal, "dev-approver")).output.text.startswith("Rejected change request")

    async def refused(self: CustomObjects, *args: Any) -> Any:
        raise ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(CustomObjects, "patch", refused)
    objects.task(harness.cluster, "t-1")
    cancel = (await propose(harness, "cancel_task", "dev-publisher", task="t-1")).proposal
    refusal = (await confirm(harness, cancel, "dev-publisher")).output.text
    assert refusal == "I could not cancel t-1 (HTTP 403: Forbidden)"
    objects.change(harness.cluster, "second-cab", task_name="other")
    decide = (
        await propose(harness, "decide_change", "dev-approver", change_request="second-cab", decision="Approve")
    ).proposal
    failed = await confirm(harness, decide, "dev-approver")
    assert failed.output.text == "I could not record the decision on second-cab (HTTP 403: Forbidden)"
