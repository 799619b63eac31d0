"""The CLI through the real gateway on the e2e stack: chat (pty and pipe), approve, tasks and trace.

Each command runs as its own process (`python -m controller.cli …`, as `ringpilot` would), with the
dev user's token file the stack wrote; the gateway, controller and worker are the real processes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pexpect
import psycopg
import pytest
import yaml

from controller.api.labels import CORRELATION_LABEL
from tests.console.conftest import CliGateway
from tests.fixtures.stack import Stack, wait_for
from tests.gateway.conftest import E2E_NAMESPACE

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "controller.cli"]
NS = E2E_NAMESPACE  # where the gateway keeps conversations, and chat-created tasks land


def run(gw: CliGateway, user: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [*CLI, *args, "--gateway", gw.url, "--token-file", str(gw.token_file(user))]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=180, env=gw.env)


def conversation_of(output: str) -> str:
    found = re.search(r"Conversation (\S+) \(correlation ID", output)
    assert found, output
    return found.group(1)


def test_chat_through_a_pipe_answers_each_line_and_exits_0_at_eof(stack: Stack, cli_gateway: CliGateway) -> None:
    result = run(
        cli_gateway, "dev-viewer", "chat", stdin="show me deployments in ring 1\n\nwhat is the system health?\n"
    )
    assert result.returncode == 0, result.stderr
    name = conversation_of(result.stdout)
    conversation = stack.get("conversations", name, NS)
    assert conversation["spec"]["user"] == "dev-viewer"
    assert len(conversation["spec"]["messages"]) == 2  # the blank line is not a message
    assert conversation["status"]["answered"] == 2
    last_reply = conversation["status"]["reply"].splitlines()[0]
    assert last_reply in result.stdout
    assert "you>" not in result.stdout  # no prompts in a pipe


@dataclass(frozen=True)
class PtyChat:
    """What one interactive `ringpilot chat` did: its conversation, the task it created, its exit status."""

    conversation: str
    task: str
    proposal: str
    exitstatus: int | None


@pytest.fixture(scope="module")
def pty_chat(stack: Stack, cli_gateway: CliGateway) -> Iterator[PtyChat]:
    """`ringpilot chat` in a terminal, as dev-publisher: deploy web to ring 0, confirm with y, then Ctrl-D."""
    args = ["-m", "controller.cli", "chat", "--gateway", cli_gateway.url, "--token-file"]
    child = pexpect.spawn(
        sys.executable,
        [*args, str(cli_gateway.token_file("dev-publisher"))],
        env=cli_gateway.env,
        encoding="utf-8",
        timeout=120,
        dimensions=(50, 200),
    )
    try:
        child.expect(r"Conversation ([a-z0-9.-]+) \(correlation ID")
        name = child.match.group(1)
        child.expect_exact("you> ")
        child.sendline("deploy web 1.5.0 to ring 0")
        child.expect(r"Proposed: ([^\r\n]+)")
        proposal = child.match.group(1)
        child.expect_exact("confirm? [y/N] ")
        child.sendline("y")
        child.expect(rf"Created DeploymentTask {NS}/([a-z0-9.-]+)")  # a name, not the colour codes after it
        task = child.match.group(1)
        child.expect_exact("you> ")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    yield PtyChat(name, task, proposal, child.exitstatus)
    cancel(stack, task)


def cancel(stack: Stack, task: str) -> None:
    """Stop a task these tests started, so later tests may change the same app (one change per app and ring)."""
    stack.custom.patch_namespaced_custom_object(
        "ringpilot.dev", "v1alpha1", NS, "deploymenttasks", task, {"spec": {"cancel": True}}
    )


def test_chat_through_a_pty_streams_the_proposal_asks_and_creates_the_task(stack: Stack, pty_chat: PtyChat) -> None:
    assert pty_chat.exitstatus == 0
    assert "web" in pty_chat.proposal
    body = stack.get("deploymenttasks", pty_chat.task, NS)
    assert (body["spec"]["app"], body["spec"]["version"]) == ("web", "1.5.0")
    assert body["spec"]["requestedBy"] == "dev-publisher"
    conversation = stack.get("conversations", pty_chat.conversation, NS)
    assert body["metadata"]["labels"][CORRELATION_LABEL] == conversation["metadata"]["labels"][CORRELATION_LABEL]


def test_a_proposal_declined_from_a_pipe_creates_nothing(stack: Stack, cli_gateway: CliGateway) -> None:
    before = {
        t["metadata"]["name"]
        for t in stack.custom.list_namespaced_custom_object("ringpilot.dev", "v1alpha1", NS, "deploymenttasks")["items"]
    }
    result = run(cli_gateway, "dev-publisher", "chat", stdin="deploy payments 9.9.9 to ring 0\nno\n")
    assert result.returncode == 0, result.stderr
    assert "Proposed: " in result.stdout and "confirm? [y/N] no" in result.stdout
    assert "Created DeploymentTask" not in result.stdout
    conversation = stack.get("conversations", conversation_of(result.stdout), NS)
    assert len(conversation["spec"]["messages"]) == 2 and conversation["status"].get("pending") is None
    after = {
        t["metadata"]["name"]
        for t in stack.custom.list_namespaced_custom_object("ringpilot.dev", "v1alpha1", NS, "deploymenttasks")["items"]
    }
    assert after == before


def test_resuming_a_conversation_answers_its_waiting_proposal_first(stack: Stack, cli_gateway: CliGateway) -> None:
    token = cli_gateway.token_file("dev-publisher").read_text().strip()
    created = httpx.post(
        f"{cli_gateway.url}/api/v1/conversations",
        json={"text": "deploy payments 9.9.7 to ring 0"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    name = created.raise_for_status().json()["name"]
    wait_for(lambda: (stack.get("conversations", name, NS).get("status") or {}).get("pending"), 60, 0.2, "a proposal")

    result = run(cli_gateway, "dev-publisher", "chat", "--conversation", name, stdin="no\nwhat is the system health?\n")
    assert result.returncode == 0, result.stderr
    assert f"Resuming conversation {name}" in result.stdout
    assert "Proposed: " in result.stdout and "confirm? [y/N] no" in result.stdout
    conversation = stack.get("conversations", name, NS)
    assert conversation["status"].get("pending") is None
    assert [m["text"] for m in conversation["spec"]["messages"]][1:] == ["no", "what is the system health?"]
    assert conversation["status"]["reply"].splitlines()[0] in result.stdout


RISKY = {
    "privilegeImpact": "AdminInstall",
    "supplyChainTrust": "UnsignedUnknownOrigin",
    "exploitability": "ListenerScripting",
    "dataAccess": "CredentialStore",
    "sbomVulnerability": "CriticalWithControls",
    "operationalComplexity": "Reboot",
    "history": "ManyFailures",
}


def test_approve_by_an_approver_is_recorded_and_by_the_submitter_refused(stack: Stack, cli_gateway: CliGateway) -> None:
    doc = {
        "apiVersion": "ringpilot.dev/v1alpha1",
        "kind": "DeploymentTask",
        "metadata": {"name": "cli-cab", "namespace": NS},
        "spec": {
            "app": "payments",
            "version": "3.0.0",
            "maxRing": 2,
            "requestedBy": "dev-publisher",
            "reason": "CLI approval e2e",
            "risk": RISKY,
            "monitor": {"pollIntervalSeconds": 1, "soakSeconds": 0},
        },
    }
    stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), user="dev-publisher")
    change = wait_for(
        lambda: (stack.get("deploymenttasks", "cli-cab", NS).get("status") or {}).get("changeRequest"),
        90,
        0.2,
        "the task's ChangeRequest",
    )
    digest = stack.get("changerequests", change, NS)["spec"]["planDigest"]

    refused = run(cli_gateway, "dev-publisher", "approve", change)
    assert refused.returncode == 1
    assert "ringpilot approve: 403 Forbidden: dev-publisher" in refused.stderr
    assert stack.get("changerequests", change, NS)["spec"]["decisions"] == []

    approved = run(cli_gateway, "dev-approver", "approve", change, "--max-ring", "1", "--comment", "canary first")
    assert approved.returncode == 0, approved.stderr
    assert f"Approved {NS}/{change} (plan {digest[:12]})" in approved.stdout
    [decision] = stack.get("changerequests", change, NS)["spec"]["decisions"]
    assert (decision["approver"], decision["decision"], decision["planDigest"]) == ("dev-approver", "Approve", digest)
    assert (decision["conditions"]["maxRing"], decision["comment"]) == (1, "canary first")

    again = run(cli_gateway, "dev-approver", "approve", change, "--reject")
    assert again.returncode == 1 and "409" in again.stderr  # one decision per approver
    cancel(stack, "cli-cab")
    missing = run(cli_gateway, "dev-approver", "approve", "no-such-change")
    assert missing.returncode == 1 and "no ChangeRequest no-such-change" in missing.stderr


def test_tasks_shows_a_task_with_its_rings(stack: Stack, cli_gateway: CliGateway, pty_chat: PtyChat) -> None:
    task = pty_chat.task
    wait_for(
        lambda: (stack.get("deploymenttasks", task, NS).get("status") or {}).get("rings"), 90, 0.2, "ring progress"
    )
    result = run(cli_gateway, "dev-viewer", "tasks", "--app", "web")
    assert result.returncode == 0, result.stderr
    row = " ".join(result.stdout.split())
    assert f"{NS}/{task}" in row and "web@1.5.0" in row
    assert re.search(r"R0 ━* ?\d+/\d+ updated, \d+ healthy", row), result.stdout
    none = run(cli_gateway, "dev-viewer", "tasks", "--app", "no-such-app")
    assert none.returncode == 0 and "No DeploymentTasks." in none.stdout
    bad = run(cli_gateway, "dev-viewer", "tasks", "--phase", "Sleeping")
    assert bad.returncode == 1 and "422" in bad.stderr


def audit_rows(stack: Stack, correlation: str) -> list[dict[str, Any]]:
    with psycopg.connect(stack.database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT action, trace_id FROM audit_events WHERE correlation_id = %s ORDER BY id", (correlation,))
        return [{"action": a, "trace_id": t} for a, t in cur.fetchall()]


def test_trace_shows_the_turns_the_tasks_steps_its_audit_rows_and_trace_ids(
    stack: Stack, cli_gateway: CliGateway, pty_chat: PtyChat
) -> None:
    task = pty_chat.task
    correlation = stack.get("deploymenttasks", task, NS)["metadata"]["labels"][CORRELATION_LABEL]

    def steps_done() -> list[dict[str, Any]] | None:
        steps = (stack.get("deploymenttasks", task, NS).get("status") or {}).get("steps") or []
        started = [s for s in steps if s.get("startedAt")]
        return started if len(started) >= 2 and audit_rows(stack, correlation) else None

    steps = wait_for(steps_done, 90, 0.2, "the task's first steps")
    result = run(cli_gateway, "dev-publisher", "trace", correlation)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Correlation ID: {correlation}" in out
    rows = audit_rows(stack, correlation)
    for action in {row["action"] for row in rows}:
        assert action in out
    ids = [row["trace_id"] for row in rows if row["trace_id"]]
    assert ids, "the controller records a trace id with its audit rows"
    header = next(line for line in out.splitlines() if line.startswith("Trace IDs: "))
    assert all(trace_id in header for trace_id in ids)
    for step in steps:
        assert step["name"] in out
    assert "tool deploy" in out and "turn " in out and "deploy web 1.5.0 to ring 0" in out

    as_json = run(cli_gateway, "dev-viewer", "trace", correlation, "--json")
    trace = json.loads(as_json.stdout)
    assert trace["correlationId"] == correlation and set(ids) <= set(trace["traceIds"])
    times = [datetime.fromisoformat(entry["at"].replace("Z", "+00:00")) for entry in trace["entries"]]
    assert times == sorted(times)
    said = [e for e in trace["entries"] if e["source"] == "message"]
    assert said and all(e["detail"] == "(another user's conversation)" for e in said)  # the viewer's view


def test_without_a_token_the_cli_says_what_to_set(cli_gateway: CliGateway, tmp_path: Path) -> None:
    env = {k: v for k, v in cli_gateway.env.items() if not k.startswith("RINGPILOT_TOKEN")}
    env["KUBECONFIG"] = str(tmp_path / "none")
    result = subprocess.run([*CLI, "tasks", "--gateway", cli_gateway.url], capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "pass --token-file" in result.stderr
    forged = tmp_path / "forged"
    forged.write_text("not-a-token\n")
    denied = subprocess.run(
        [*CLI, "trace", "x", "--gateway", cli_gateway.url, "--token-file", str(forged)],
        capture_output=True,
        text=True,
        env={**env, **{k: os.environ[k] for k in ("PATH",) if k in os.environ}},
    )
    assert denied.returncode == 1 and "401" in denied.stderr
