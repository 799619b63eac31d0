"""The console's subcommands as `ringpilot` parses them, and `tasks -w` refreshing in place."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from agent.console.commands import watch_tasks
from agent.console.gatewayclient import GatewayError
from agent.gateway.consoleviews import RingSummary, TaskList, TaskSummary
from controller.cli import main


def test_the_console_commands_are_ringpilot_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    usage = capsys.readouterr().out
    for command in ("chat", "approve", "tasks", "trace"):
        assert command in usage


def test_approve_refuses_a_ring_or_rate_out_of_range_and_conditions_on_a_rejection(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["approve", "web-cab", "--max-ring", "7"])
    assert exited.value.code == 2
    assert "7 is not a ring (0-4)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["approve", "web-cab", "--min-success-rate", "1.5"])
    assert "1.5 is not a success rate between 0 and 1" in capsys.readouterr().err
    assert main(["approve", "web-cab", "--reject", "--max-ring", "1"]) == 2
    assert "conditions of an approval" in capsys.readouterr().err


def test_a_missing_token_is_a_usage_error_naming_what_to_set(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    for name in ("RINGPILOT_TOKEN", "RINGPILOT_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    assert main(["trace", "corr-1", "--gateway", "http://127.0.0.1:9"]) == 2
    assert "ringpilot trace: no token: pass --token-file" in capsys.readouterr().err


def listing(updated: int) -> TaskList:
    ring = RingSummary(ring=0, targets=4, updated=updated, healthy=updated)
    return TaskList(
        items=[TaskSummary(name="web-1-5", namespace="default", app="web", version="1.5.0", max_ring=0, rings=[ring])]
    )


def test_watch_redraws_the_table_and_rides_out_a_gateway_that_is_away() -> None:
    answers: list[TaskList | GatewayError] = [
        listing(1),
        GatewayError(503, "Unavailable", "PostgreSQL is unavailable"),
        listing(4),
    ]
    naps: list[float] = []

    def fetch() -> TaskList:
        answer = answers.pop(0)
        if isinstance(answer, GatewayError):
            raise answer
        return answer

    out = io.StringIO()
    console = Console(file=out, width=160, color_system=None, force_terminal=False)
    assert watch_tasks(fetch, console, 2.0, naps.append, rounds=2) == 0
    assert naps == [2.0, 2.0] and answers == []
    text = " ".join(out.getvalue().split())
    assert "4/4 updated, 4 healthy" in text  # the last frame stays on screen

    def refused() -> TaskList:
        raise GatewayError(401, "Unauthorized", "A valid bearer token is required")

    with pytest.raises(GatewayError, match="bearer token"):
        watch_tasks(refused, console, 2.0, naps.append, rounds=1)
