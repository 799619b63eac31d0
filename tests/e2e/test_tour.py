"""The README's tour, run as written: its kubectl commands in order against `ringpilot dev`.

The commands come from the tour's fenced block in README.md (so the test breaks when the README
drifts); lines that are not kubectl commands are left out. Each runs as the context it names. Where a
human would wait, the test waits on a condition with a deadline: a watch (`-w`) runs once without it,
then the test polls for what the tour says you will see. The stack runs the dev policy with soaks and
drift checks shortened to seconds.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.stack import wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DEV_POLICY = ROOT / "controller" / "policy" / "dev.yaml"


def tour_commands(readme: str) -> list[list[str]]:
    """The kubectl commands of the tour's first fenced block, as argument lists, in order."""
    section = readme.split("### A tour", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "the tour has no ```sh block"
    commands, pending = [], ""
    for line in block.group(1).splitlines():
        pending = f"{pending}\n{line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # a quote goes on over the next line
            continue
        pending = ""
        if words and words[0] == "kubectl":
            commands.append(words)
    assert not pending, f"unfinished command at the end of the tour: {pending!r}"
    return commands


def fast_policy(path: Path) -> Path:
    """The dev policy with soaks of 1 s and drift checks every 5 s (everything else as shipped)."""
    policy = yaml.safe_load(DEV_POLICY.read_text())
    for ring in policy["rings"]:
        ring["minSoakSeconds"] = 1
    policy["remediation"]["checkIntervalSeconds"] = dict.fromkeys(policy["remediation"]["checkIntervalSeconds"], 5)
    policy["remediation"]["initialBackoffSeconds"] = 1
    path.write_text(yaml.safe_dump(policy))
    return path


@dataclass
class Dev:
    """A running `ringpilot dev` and kubectl against it."""

    kubeconfig: Path

    def run(self, words: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        result = subprocess.run(words, capture_output=True, text=True, timeout=400, env=env, cwd=ROOT)
        if check and result.returncode != 0:
            raise AssertionError(f"{shlex.join(words)} failed: {result.stderr}")
        return result

    def get(self, resource: str, name: str, namespace: str = "default") -> dict[str, Any]:
        found: dict[str, Any] = json.loads(
            self.run(["kubectl", "get", resource, name, "-n", namespace, "-o", "json"]).stdout
        )
        return found

    def items(self, resource: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self.run(["kubectl", "get", resource, "-o", "json"]).stdout)["items"]
        return found


@pytest.fixture(scope="module")
def dev() -> Iterator[Dev]:
    root = Path(tempfile.mkdtemp(prefix="ringpilot-tour-"))  # not pytest's tmp: other runs may prune it
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGPILOT_")}
    env["RINGPILOT_POLICY_FILE"] = str(fast_policy(root / "policy.yaml"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "dev", "--data-dir", str(root / "state")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen, deadline = [], time.monotonic() + 90
        while time.monotonic() < deadline and "Stop: Ctrl-C" not in "".join(seen[-1:]):
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise AssertionError("ringpilot dev exited:\n" + "".join(seen))
            seen.append(line)
        assert "Stop: Ctrl-C" in "".join(seen), "ringpilot dev did not come up:\n" + "".join(seen)
        yield Dev(root / "state" / "kubeconfig")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        shutil.rmtree(root, ignore_errors=True)


# --- what the tour says you will see, step by step ----------------------------------------------


def answered_last(dev: Dev) -> dict[str, Any] | None:
    """The sample Conversation once its last message is answered (what a human waits for before reading)."""
    conv = dev.get("conv", "release-chat")
    last = conv["spec"]["messages"][-1]["id"]
    done = [a["id"] for a in (conv.get("status") or {}).get("answeredMessages", [])]
    return conv if last in done else None


#: What the tour says each message of the chat is answered with (the reply read after it).
REPLIES = {
    "What is the status of web?": "web",
    "deploy web 1.4.3 to ring 1": "I can deploy web 1.4.3 to rings 0-1",
    "yes": "Created DeploymentTask",
}


class Tour:
    def __init__(self, dev: Dev) -> None:
        self.dev = dev
        self.replies: list[str] = []
        self.chat_task: str | None = None

    def before(self, words: list[str]) -> None:
        line = shlex.join(words)
        if "jsonpath={.status.reply}" in line:
            wait_for(lambda: answered_last(self.dev), 60, 0.5, "the sample Conversation to answer its last message")

    def after(self, words: list[str], out: str) -> None:
        line, dev = shlex.join(words), self.dev
        if words[1:3] == ["get", "conv,dtask"]:
            for name in ("release-chat", "web-1-4-2", "payments-2-0-0"):
                assert name in out
        elif "jsonpath={.status.reply}" in line:
            self.replies.append(out)
            conv = dev.get("conv", "release-chat")
            asked = conv["spec"]["messages"][-1]["text"]
            assert REPLIES.get(asked, "") in out, f"{asked!r} was answered {out!r}"
            if asked == "yes":
                [ref] = conv["status"]["resources"]
                self.chat_task = ref["name"]
        elif words[1:3] == ["get", "dtask"]:
            assert [w for w in out.split() if w in ("PHASE", "STEP", "PROGRESS", "RISK")] == [
                "PHASE",
                "STEP",
                "PROGRESS",
                "RISK",
            ]
            assert self.chat_task is not None

            def shipping() -> bool:
                status = dev.get("dtask", self.chat_task or "").get("status") or {}
                return status.get("phase") in ("Deploying", "Monitoring", "Succeeded") and "risk" in status

            wait_for(shipping, 120, 1, f"the chat's task {self.chat_task} to ship through its rings")
        elif words[1:3] == ["get", "asg"]:

            def healed() -> bool:
                recorded = dev.get("asg", "payments-ring-0")["spec"]["version"]
                image = dev.get("deploy", "payments", "ring-0-lab")["spec"]["template"]["spec"]["containers"][0][
                    "image"
                ]
                return str(image).endswith(f":{recorded}") and recorded != "9.9.9"

            wait_for(healed, 180, 1, "payments in ring 0 to be put back to the version payments-ring-0 records")
        elif words[1:3] == ["get", "rem"]:
            assert "payments-ring-0-fix" in out
        elif words[1:3] == ["get", "chg"]:

            def opened() -> list[dict[str, Any]] | None:
                found = [c for c in dev.items("chg") if c["spec"]["task"] == "payments-2-0-0"]
                return found if found and (found[0].get("status") or {}).get("phase") == "Pending" else None

            [change] = wait_for(opened, 120, 1, "the ChangeRequest of payments-2-0-0, pending")  # opened once
            assert change["metadata"]["name"] == "payments-2-0-0-cab" and change["spec"]["requiredApprovals"] == 2
        elif "dev-approver-2" in words and "chg" in words:

            def approved() -> bool:
                return (dev.get("chg", "payments-2-0-0-cab").get("status") or {}).get("phase") == "Approved"

            wait_for(approved, 60, 0.5, "payments-2-0-0-cab to be approved by the quorum")

            def stopped() -> bool:
                return (dev.get("dtask", "payments-2-0-0").get("status") or {}).get("phase") == "Stopped"

            wait_for(stopped, 60, 0.5, "payments-2-0-0 to stop at ring 1, the approval's maxRing")


STEPS: list[tuple[str, Callable[[list[str]], bool]]] = [
    ("the samples are listed, not applied", lambda w: w[1:3] == ["get", "conv,dtask"]),
    ("the chat is read as the publisher writes it", lambda w: "dev-publisher" in w and "conv" in w),
    ("the rollout of web is waited for", lambda w: w[1] == "wait"),
    ("the rollouts are watched", lambda w: w[1:3] == ["get", "dtask"] and "-w" in w),
    ("the CAB record is watched", lambda w: w[1:3] == ["get", "chg"] and "-w" in w),
    ("two approvers approve", lambda w: "dev-approver-2" in w),
    ("drift is injected and watched", lambda w: w[1:3] == ["get", "asg"] and "-w" in w),
    ("the failure injection is undone", lambda w: w[-1].endswith("/fail-")),
]


def test_the_tour_runs_as_written(dev: Dev) -> None:
    commands = tour_commands((ROOT / "README.md").read_text())
    missing = [what for what, match in STEPS if not any(match(w) for w in commands)]
    assert missing == [], f"the tour no longer has these steps: {missing}"
    assert not any("apply" in w and any("crds/samples" in a for a in w) for w in commands), "samples applied again"
    watches = [w[2] for w in commands if "-w" in w and w[1] == "get"]
    assert watches and all("," not in kind for kind in watches), f"one resource type per watch: {watches}"
    tour = Tour(dev)
    for words in commands:
        tour.before(words)
        run = [w for w in words if w != "-w"]
        tour.after(words, dev.run(run).stdout)
    assert len(tour.replies) >= 3 and tour.chat_task is not None
    annotations = dev.get("deploy", "web", "ring-1-canary")["metadata"].get("annotations") or {}
    assert "kubelet.ringpilot.dev/fail" not in annotations
    conv = dev.get("conv", "release-chat")
    assert [a["id"] for a in conv["status"]["answeredMessages"]] == [m["id"] for m in conv["spec"]["messages"]]


def test_the_tour_parser_keeps_kubectl_lines_and_joins_continued_ones() -> None:
    readme = """### A tour

```sh
# open the chat in the browser first
open http://127.0.0.1:8080/
kubectl get conv,dtask                    # a comment
kubectl --context dev-publisher patch conv c --type json \\
  -p '[{"op":"add","value":
  {"id":"m2"}}]'
```
"""
    assert tour_commands(readme) == [
        ["kubectl", "get", "conv,dtask"],
        [
            "kubectl",
            "--context",
            "dev-publisher",
            "patch",
            "conv",
            "c",
            "--type",
            "json",
            "-p",
            '[{"op":"add","value":\n  {"id":"m2"}}]',
        ],
    ]
