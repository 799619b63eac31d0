"""Acceptance of drift detection and remediation on the whole system (issue 5).

The emulator with the simulated kubelet, the real controller and worker, PostgreSQL and Redis; the
controller runs with a policy whose checks, settle and backoff are seconds. Drift is injected by
hand, as an operator or another controller would cause it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from controller.api.labels import KUBELET_FAIL_UNTIL_RESTART_ANNOTATION
from controller.devkit.seeding import RING_NAMESPACES
from tests.fixtures.stack import Stack, wait_for
from tests.remediation.e2e_support import (
    FREEZE,
    NS,
    attempts,
    audit_rows,
    available,
    condition,
    events_for,
    image,
    make_assignment,
    make_remediation,
    make_workload,
    set_image,
    status_of,
    still,
    unique,
    wait_status,
    write_policy,
)

pytestmark = pytest.mark.e2e
GOOD = "registry.example.com/team/{app}:1.4.1"
BAD = "registry.example.com/team/{app}:9.9.9"


@pytest.fixture(scope="module")
def drift_stack(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack with the controller restarted on the short-interval remediation policy."""
    policy = write_policy(tmp_path_factory.mktemp("drift") / "policy.yaml")
    previous = stack.env["RINGPILOT_POLICY_FILE"]
    stack.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    )
    stack.env["RINGPILOT_POLICY_FILE"] = str(policy)
    stack.restart_controller()
    try:
        yield stack
    finally:
        for plural in ("assignments", "remediations"):  # nothing of ours is checked after we leave
            stack.kubectl("delete", plural, "--all", "-n", NS, "--wait=false", check=False)
        stack.env["RINGPILOT_POLICY_FILE"] = previous
        stack.restart_controller()


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def remediation_of(stack: Stack, assignment: str, timeout: float = 20) -> str:
    status = wait_status(
        stack, "assignments", assignment, lambda s: s.get("remediation"), timeout, f"a Remediation on {assignment}"
    )
    return str(status["remediation"])


Inject = Callable[[Stack, str, str], None]


def inject_version(stack: Stack, namespace: str, app: str) -> None:
    set_image(stack, namespace, app, BAD.format(app=app))


def inject_missing(stack: Stack, namespace: str, app: str) -> None:
    stack.apps.delete_namespaced_deployment(app, namespace)


def inject_config(stack: Stack, namespace: str, app: str) -> None:
    stack.core.patch_namespaced_config_map(f"{app}-config", namespace, {"data": {"LOG_LEVEL": "debug"}})


def inject_crashloop(stack: Stack, namespace: str, app: str) -> None:
    stack.apps.patch_namespaced_deployment(
        app, namespace, {"metadata": {"annotations": {KUBELET_FAIL_UNTIL_RESTART_ANNOTATION: "CrashLoop"}}}
    )


CASES: dict[str, tuple[Inject, str]] = {
    "VersionMismatch": (inject_version, "Update"),
    "MissingInstall": (inject_missing, "Install"),
    "ConfigurationDrift": (inject_config, "ReapplyConfig"),
    "ServiceDown": (inject_crashloop, "Restart"),
}


def test_each_drift_type_in_ring_0_is_detected_fixed_verified_and_synced_again(drift_stack: Stack) -> None:
    stack = drift_stack
    namespace = RING_NAMESPACES[0]
    apps = {kind: unique(f"d{kind.lower()[:6]}") for kind in CASES}
    for app in apps.values():
        sha = make_workload(stack, app, 0)
        make_assignment(stack, app, app, 0, sha)
    for app in apps.values():
        wait_status(stack, "assignments", app, lambda s: s.get("sync") == "Synced", 20, f"{app} Synced")
    injected: dict[str, float] = {}
    fixed_by: dict[str, str] = {}
    for kind, (inject, _) in CASES.items():
        inject(stack, namespace, apps[kind])
        injected[kind] = time.time()
    for kind, (_, action) in CASES.items():
        app = apps[kind]
        name = fixed_by[kind] = wait_for(
            lambda a=app: next(iter(remediation_names(stack, a)), None), 20, 0.1, f"{kind} detected on {app}"
        )
        opened = parse(stack.get("remediations", name, NS)["metadata"]["creationTimestamp"])
        grace = 1 if kind == "ServiceDown" else 0  # down = unavailable beyond serviceDownGraceSeconds
        assert opened.timestamp() - injected[kind] <= 2.5 + grace, kind  # one interval (1 s), a tick, rounding
        done = wait_status(
            stack,
            "remediations",
            name,
            lambda s: s.get("phase") in ("Succeeded", "Escalated", "Failed", "Stalled", "Denied"),
            40,
            f"{kind} remediated",
        )
        assert done["phase"] == "Succeeded", done
        assert (done["driftType"], done["action"]) == (kind, action)
        assert done["verification"]["verified"] is True
        assert "healthy" in done["verification"]["detail"]
        assert done["attempts"] == 1 and done["policy"]["allowed"] is True
        synced = wait_status(
            stack,
            "assignments",
            app,
            lambda s: s.get("sync") == "Synced" and not s.get("remediation"),
            20,
            f"{app} Synced again",
        )
        assert condition(synced, "Ready")["status"] == "True"
        detected = sorted((e.first_timestamp, e.message) for e in events_for(stack, app) if e.reason == "DriftDetected")
        assert detected[0][1].startswith(kind), detected
        assert remediation_names(stack, app) == [name]
    assert image(stack, namespace, apps["VersionMismatch"]) == GOOD.format(app=apps["VersionMismatch"])
    assert available(stack, namespace, apps["MissingInstall"])
    assert available(stack, namespace, apps["ServiceDown"])
    data = stack.core.read_namespaced_config_map(f"{apps['ConfigurationDrift']}-config", namespace).data
    assert data["LOG_LEVEL"] == "info"
    rem = stack.get("remediations", fixed_by["VersionMismatch"], NS)
    actions = [row["action"] for row in audit_rows(stack, rem["metadata"]["labels"]["ringpilot.dev/correlation-id"])]
    assert {"RemediationStarted", "FixExecuted", "FixApplied", "Verified"} <= set(actions), actions


def remediation_names(stack: Stack, assignment: str) -> list[str]:
    items = stack.custom.list_namespaced_custom_object("ringpilot.dev", "v1alpha1", NS, "remediations")["items"]
    return [i["metadata"]["name"] for i in items if i["spec"]["assignment"] == assignment]


def test_the_same_drift_in_ring_3_escalates_and_nothing_changes(drift_stack: Stack) -> None:
    stack = drift_stack
    app = unique("dring3")
    namespace = RING_NAMESPACES[3]
    make_assignment(stack, app, app, 3, make_workload(stack, app, 3))
    wait_status(stack, "assignments", app, lambda s: s.get("sync") == "Synced", 20)
    inject_version(stack, namespace, app)
    name = remediation_of(stack, app)
    status = wait_status(stack, "remediations", name, lambda s: s.get("phase") == "Escalated", 20)
    assert status["requiresHumanReview"] is True
    assert status["policy"]["rule"] == "ProductionRing" and status["policy"]["allowed"] is False
    assert condition(status, "Ready")["reason"] == "ProductionRing"
    still(lambda: image(stack, namespace, app) == BAD.format(app=app), 3)
    assert attempts(stack, remediation=name) == []
    assert any(e.reason == "Escalated" and "ProductionRing" in e.message for e in events_for(stack, name))
    rem = stack.get("remediations", name, NS)
    rows = audit_rows(stack, rem["metadata"]["labels"]["ringpilot.dev/correlation-id"])
    assert any(r["action"] == "Escalated" and r["detail"]["rule"] == "ProductionRing" for r in rows), rows
    assert remediation_names(stack, app) == [name]  # one open per Assignment: no second one while it waits
    assignment = status_of(stack, "assignments", app)
    assert assignment["sync"] == "Drifted" and "awaits a person" in condition(assignment, "Synced")["message"]


class Fighter:
    """Another actor that sets the drifted image again whenever `when()` says so."""

    def __init__(self, stack: Stack, namespace: str, app: str, when: Callable[[], bool]) -> None:
        self.stack, self.namespace, self.app, self.when = stack, namespace, app, when
        self.stop = threading.Event()
        self.injections = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.05):
            try:
                if image(self.stack, self.namespace, self.app) == GOOD.format(app=self.app) and self.when():
                    inject_version(self.stack, self.namespace, self.app)
                    self.injections += 1
            except Exception:  # the API may be briefly busy; the next poll retries
                continue

    def __enter__(self) -> Fighter:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join(5)


def test_drift_reinjected_after_every_fix_backs_off_and_escalates_after_3_attempts(drift_stack: Stack) -> None:
    stack = drift_stack
    app = unique("dbackoff")
    namespace = RING_NAMESPACES[0]
    make_assignment(stack, app, app, 0, make_workload(stack, app, 0))
    wait_status(stack, "assignments", app, lambda s: s.get("sync") == "Synced", 20)
    inject_version(stack, namespace, app)
    with Fighter(stack, namespace, app, lambda: True) as fighter:
        name = remediation_of(stack, app)
        status = wait_status(stack, "remediations", name, lambda s: s.get("phase") == "Escalated", 60)
    assert fighter.injections >= 3
    assert status["policy"]["rule"] == "MaxAttempts" and status["attempts"] == 3
    assert status["requiresHumanReview"] is True and status["verification"]["verified"] is False
    rows = attempts(stack, remediation=name)
    assert [r["number"] for r in rows] == [1, 2, 3] and {r["outcome"] for r in rows} == {"failed"}
    gaps = [(rows[i + 1]["started_at"] - rows[i]["finished_at"]).total_seconds() for i in range(2)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps  # 1 s, then 2 s (initialBackoffSeconds 1, doubling)
    assert [e.reason for e in events_for(stack, name)].count("AttemptFailed") == 2


def test_a_fighting_actor_is_detected_as_flapping_and_stalls(drift_stack: Stack) -> None:
    stack = drift_stack
    app = unique("dflap")
    namespace = RING_NAMESPACES[0]
    asg = make_assignment(stack, app, app, 0, make_workload(stack, app, 0))
    wait_status(stack, "assignments", app, lambda s: s.get("sync") == "Synced", 20)

    def last_succeeded() -> bool:
        names = remediation_names(stack, app)
        return bool(names) and all(status_of(stack, "remediations", n).get("phase") == "Succeeded" for n in names)

    inject_version(stack, namespace, app)
    with Fighter(stack, namespace, app, last_succeeded):
        stalled = wait_for(
            lambda: next(
                (
                    n
                    for n in remediation_names(stack, app)
                    if status_of(stack, "remediations", n).get("phase") == "Stalled"
                ),
                None,
            ),
            90,
            0.2,
            "a Stalled Remediation",
        )
    status = status_of(stack, "remediations", stalled)
    assert status["policy"]["rule"] == "Flapping" and status["requiresHumanReview"] is True
    verified = [r for r in attempts(stack, assignment_uid=asg["metadata"]["uid"]) if r["outcome"] == "verified"]
    assert len(verified) == 2
    assert any(e.reason == "Stalled" for e in events_for(stack, stalled))


def test_a_deny_window_covering_now_holds_the_fix_and_the_status_names_it(drift_stack: Stack) -> None:
    stack = drift_stack
    app = unique("dfreeze")
    namespace = RING_NAMESPACES[1]
    make_assignment(stack, app, app, 1, make_workload(stack, app, 1))
    wait_status(stack, "assignments", app, lambda s: s.get("sync") == "Synced", 20)
    inject_version(stack, namespace, app)
    name = remediation_of(stack, app)
    status = wait_status(stack, "remediations", name, lambda s: (s.get("policy") or {}).get("rule") == "DenyWindow", 20)
    assert status["phase"] == "Pending" and status["policy"]["window"] == FREEZE
    assert FREEZE in condition(status, "Ready")["message"] and status["nextAttemptAt"]
    still(lambda: image(stack, namespace, app) == BAD.format(app=app), 3)
    assert attempts(stack, remediation=name) == []


def test_requests_by_people_go_through_the_same_policy(drift_stack: Stack, tmp_path: Path) -> None:
    stack = drift_stack
    app = unique("dperson")
    namespace = RING_NAMESPACES[0]
    make_assignment(
        stack, app, app, 0, make_workload(stack, app, 0), mode="Warn", artifact="registry.example.com/team/" + app
    )
    wait_status(stack, "assignments", app, lambda s: s.get("sync") == "Synced", 20)
    inject_version(stack, namespace, app)
    wait_status(stack, "assignments", app, lambda s: s.get("sync") == "Drifted", 20)
    assert remediation_names(stack, app) == []  # Warn: recorded, not remediated
    cases = {
        "viewer": ({"assignment": app, "requestedBy": "dev-viewer"}, "Denied", "RequesterLacksPermission"),
        "ghost": ({"assignment": "no-such-assignment", "requestedBy": "dev-operator"}, "Denied", "UnknownAssignment"),
        "misfit": (
            {"assignment": app, "requestedBy": "dev-operator", "driftType": "VersionMismatch", "action": "Restart"},
            "Denied",
            "InvalidSpec",
        ),
        "forged": ({"assignment": app}, "Denied", "ReservedRequester"),
        "dry": ({"assignment": app, "requestedBy": "dev-operator", "dryRun": True}, "Planned", "Autonomous"),
    }
    names = {key: unique(f"p-{key}") for key in cases}
    for key, (spec, _, _) in cases.items():
        make_remediation(stack, names[key], spec)
    for key, (_, phase, rule) in cases.items():
        status = wait_status(
            stack,
            "remediations",
            names[key],
            lambda s: s.get("phase") in ("Denied", "Planned", "Succeeded", "Escalated"),
            20,
            key,
        )
        assert (status["phase"], status["policy"]["rule"]) == (phase, rule), (key, status)
    planned = status_of(stack, "remediations", names["dry"])["planned"]
    assert planned.startswith("Dry run: would Update") and "VersionMismatch" in planned
    still(lambda: image(stack, namespace, app) == BAD.format(app=app), 1)
    operator = unique("p-operator")
    make_remediation(stack, operator, {"assignment": app, "requestedBy": "dev-operator", "reason": "hand fix"})
    done = wait_status(stack, "remediations", operator, lambda s: s.get("phase") == "Succeeded", 30)
    assert done["requesterRole"] == "operator" and done["driftType"] == "VersionMismatch"
    assert image(stack, namespace, app) == GOOD.format(app=app)
    set_image(stack, namespace, app, f"evil.example.com/{app}:1.4.1")
    security = unique("p-security")
    make_remediation(stack, security, {"assignment": app, "requestedBy": "dev-admin"})
    escalated = wait_status(stack, "remediations", security, lambda s: s.get("phase") == "Escalated", 30)
    assert escalated["policy"]["rule"] == "SecurityRelevantDrift" and escalated["driftType"] == "Unknown"
    assert image(stack, namespace, app) == f"evil.example.com/{app}:1.4.1"
