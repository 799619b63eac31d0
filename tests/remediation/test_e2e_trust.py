"""Issue 12 on the real stack: an Assignment cannot lie about its ring or ask for a version nobody
delivered (findings 2), and a Remediation's spec edited after it acted changes nothing (finding 6)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from controller.devkit.seeding import RING_NAMESPACES
from tests.fixtures.stack import Stack, wait_for
from tests.remediation.e2e_support import (
    NS,
    condition,
    image,
    make_assignment,
    make_workload,
    set_image,
    status_of,
    unique,
    wait_status,
    write_policy,
)

pytestmark = pytest.mark.e2e
GOOD = "registry.example.com/team/{app}:1.4.1"
BAD = "registry.example.com/team/{app}:9.9.9"


@pytest.fixture(scope="module")
def drift_stack(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack with the controller on the short-interval remediation policy."""
    policy = write_policy(tmp_path_factory.mktemp("trust") / "policy.yaml")
    previous = stack.env["RINGPILOT_POLICY_FILE"]
    stack.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    )
    stack.env["RINGPILOT_POLICY_FILE"] = str(policy)
    stack.restart_controller()
    try:
        yield stack
    finally:
        for plural in ("assignments", "remediations"):
            stack.kubectl("delete", plural, "--all", "-n", NS, "--wait=false", check=False)
        stack.env["RINGPILOT_POLICY_FILE"] = previous
        stack.restart_controller()


def remediations_of(stack: Stack, assignment: str) -> list[str]:
    items = stack.custom.list_namespaced_custom_object("ringpilot.dev", "v1alpha1", NS, "remediations")["items"]
    return [i["metadata"]["name"] for i in items if i["spec"]["assignment"] == assignment]


def test_finding_2_an_assignment_that_lies_about_its_ring_or_asks_for_a_new_version_changes_nothing(
    drift_stack: Stack,
) -> None:
    stack = drift_stack
    app = unique("liar")
    make_workload(stack, app, 4)
    global_ns = RING_NAMESPACES[4]
    target = {"plane": "kubernetes", "namespace": global_ns, "name": app}
    make_assignment(stack, app, app, 0, None, target=target, version="6.6.6")
    status = wait_status(
        stack, "assignments", app, lambda s: condition(s, "InvalidSpec").get("status") == "True", 30, "InvalidSpec"
    )
    invalid = condition(status, "InvalidSpec")
    assert invalid["reason"] == "RingMismatch" and invalid["message"].startswith("spec.ring")
    assert f"{global_ns} is in ring 4" in invalid["message"]
    assert remediations_of(stack, app) == []
    assert image(stack, global_ns, app) == GOOD.format(app=app)

    honest = unique("newver")
    make_workload(stack, honest, 0)
    make_assignment(stack, honest, honest, 0, None, version="6.6.6")
    status = wait_status(
        stack, "assignments", honest, lambda s: condition(s, "InvalidSpec").get("status") == "True", 30, "refused"
    )
    refused = condition(status, "InvalidSpec")
    assert refused["reason"] == "DeployRequest" and "use a DeploymentTask" in refused["message"]
    assert refused["message"].startswith("spec.version")
    assert remediations_of(stack, honest) == []
    assert image(stack, RING_NAMESPACES[0], honest) == GOOD.format(app=honest)


def test_finding_6_a_remediation_edited_after_it_acted_keeps_its_assignment(drift_stack: Stack) -> None:
    stack = drift_stack
    namespace = RING_NAMESPACES[0]
    app, other = unique("lock"), unique("lockb")
    sha = make_workload(stack, app, 0)
    make_assignment(stack, app, app, 0, sha)
    other_sha = make_workload(stack, other, 0)
    make_assignment(stack, other, other, 0, other_sha)
    wait_status(stack, "assignments", app, lambda s: s.get("sync") == "Synced", 30, f"{app} Synced")
    set_image(stack, namespace, app, BAD.format(app=app))
    name = wait_for(lambda: next(iter(remediations_of(stack, app)), None), 30, 0.1, "the drift to be remediated")
    wait_status(stack, "remediations", name, lambda s: s.get("lockedSpec") is not None, 30, "the fix to start")
    stack.custom.patch_namespaced_custom_object(
        "ringpilot.dev", "v1alpha1", NS, "remediations", name, {"spec": {"assignment": other}}
    )
    status = wait_status(
        stack, "remediations", name, lambda s: condition(s, "SpecLocked").get("status") == "True", 30, "SpecLocked"
    )
    assert "spec.assignment" in condition(status, "SpecLocked")["message"]
    assert status["lockedSpec"]["assignment"] == app
    done = wait_status(
        stack,
        "remediations",
        name,
        lambda s: s.get("phase") in ("Succeeded", "Failed", "Escalated", "Denied", "Stalled"),
        60,
        "the fix to end",
    )
    assert done["phase"] == "Succeeded", done
    assert image(stack, namespace, app) == GOOD.format(app=app)
    assert status_of(stack, "assignments", other).get("remediation") is None
