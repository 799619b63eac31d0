"""Fault suite: a drift fix survives `kill -9` of the worker or of the controller at each of its phases.

A version drift in ring 0 opens a Remediation; each time its phase changes the process is killed and
started again. The fix still ends Succeeded and verified, patches the workload once, and posts and
audits each of its transitions once.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from controller.api.remediation import FINAL_PHASES
from controller.devkit.seeding import RING_NAMESPACES
from tests.fixtures.stack import Stack, wait_for
from tests.remediation.e2e_support import (
    NS,
    audit_rows,
    events_for,
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
    policy = write_policy(tmp_path_factory.mktemp("faults-drift") / "policy.yaml")
    previous = stack.env["RINGPILOT_POLICY_FILE"]
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    stack.kubectl("apply", "-f", "-", stdin=json.dumps(body))
    stack.env["RINGPILOT_POLICY_FILE"] = str(policy)
    stack.restart_controller()
    try:
        yield stack
    finally:
        stack.env["RINGPILOT_POLICY_FILE"] = previous
        stack.restart_controller()


@pytest.mark.parametrize("process", ["worker", "controller"])
def test_kill_9_at_each_phase_of_a_remediation_still_fixes_once(drift_stack: Stack, process: str) -> None:
    stack = drift_stack
    app = unique(f"fk{process[:3]}")
    namespace = RING_NAMESPACES[0]
    sha = make_workload(stack, app, 0)
    make_assignment(stack, app, app, 0, sha)
    wait_status(stack, "assignments", app, lambda s: s.get("sync") == "Synced", 30, f"{app} Synced")
    set_image(stack, namespace, app, BAD.format(app=app))
    drifted = stack.apps.read_namespaced_deployment(app, namespace).metadata.generation
    name = str(
        wait_status(stack, "assignments", app, lambda s: s.get("remediation"), 30, "a Remediation")["remediation"]
    )
    restart: Callable[[signal.Signals], None] = getattr(stack, f"restart_{process}")
    killed_in: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        phase = status_of(stack, "remediations", name).get("phase") or "Pending"
        if phase in FINAL_PHASES:
            break
        if phase not in killed_in:
            killed_in.append(phase)
            restart(signal.SIGKILL)
        time.sleep(0.05)
    done = wait_status(stack, "remediations", name, lambda s: s.get("phase") in FINAL_PHASES, 90, f"{name} to end")
    assert done["phase"] == "Succeeded", done
    assert done["verification"]["verified"] is True
    assert killed_in, "the Remediation ended before any kill"
    assert image(stack, namespace, app) == GOOD.format(app=app)
    fixed = stack.apps.read_namespaced_deployment(app, namespace).metadata.generation
    assert fixed == drifted + 1, f"the fix patched the workload {fixed - drifted} times"
    correlation = stack.get("remediations", name, NS)["metadata"]["labels"]["ringpilot.dev/correlation-id"]
    actions = Counter(row["action"] for row in audit_rows(stack, correlation))
    assert actions["FixApplied"] == 1 and actions["Verified"] == 1, actions
    reasons = Counter(e.reason for e in events_for(stack, name))
    assert reasons["FixApplied"] == 1 and reasons["RemediationSucceeded"] == 1, reasons
    wait_for(lambda: status_of(stack, "assignments", app).get("sync") == "Synced", 30, 0.2, f"{app} Synced again")
