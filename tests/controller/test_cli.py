"""The `ringpilot` command: wrong settings stop a process with the variable named, and nothing starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import main


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RINGPILOT_")}
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        ("controller", "RINGPILOT_RESYNC_INTERVAL_SECONDS", "-1"),
        ("controller", "RINGPILOT_LOG_LEVEL", "LOUD"),
        ("worker", "RINGPILOT_THREADS", "many"),
        ("migrate", "RINGPILOT_DATABASE_URL", "postgresql://a b c"),
    ],
)
def test_a_wrong_setting_stops_the_process_naming_the_variable(command: str, variable: str, value: str) -> None:
    result = run_cli(command, **{variable: value})
    assert result.returncode == 2
    assert f"ringpilot {command}: " in result.stderr
    assert variable in result.stderr


def test_the_worker_needs_redis_and_says_so() -> None:
    result = run_cli("worker")
    assert result.returncode == 2
    assert "RINGPILOT_REDIS_URL" in result.stderr


def test_migrate_needs_a_database_and_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RINGPILOT_DATABASE_URL", raising=False)
    assert main(["migrate"]) == 2
    assert "RINGPILOT_DATABASE_URL" in capsys.readouterr().err


def test_migrate_applies_then_reports_up_to_date(
    blank_database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RINGPILOT_DATABASE_URL", blank_database_url)
    assert main(["migrate"]) == 0
    assert "0001_foundation" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert "nothing (up to date)" in capsys.readouterr().out


def test_workers_load_our_actors_and_the_resources_plugged_in() -> None:
    from importlib.metadata import entry_points

    from controller.settings import WorkerSettings
    from controller.worker.boot import worker_argv
    from controller.worker.resources import RESOURCES_GROUP

    argv = worker_argv(WorkerSettings(threads=3))
    assert argv[-2:] == ["controller.worker.boot:setup", "controller.worker.actors"]
    assert argv[argv.index("--threads") + 1] == "3"
    assert {ep.value for ep in entry_points(group=RESOURCES_GROUP)} == {"agent.hosting:open_turns"}


def test_an_unknown_policy_file_is_refused(tmp_path: Path) -> None:
    result = run_cli("controller", RINGPILOT_POLICY_FILE=str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "RINGPILOT_POLICY_FILE" in result.stderr


def test_the_poll_interval_setting_reaches_every_consumer_even_when_dramatiq_was_imported_first() -> None:
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    from controller.worker.boot import PollInterval

    assert dramatiq.worker.WORKER_TIMEOUT == 1000  # already imported with its default: the env var would be lost
    broker = StubBroker(middleware=[PollInterval(37)])
    broker.declare_queue("steps")
    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    try:
        assert worker.worker_timeout == 37
        timeouts = {name: consumer.worker_timeout for name, consumer in worker.consumers.items()}
        assert timeouts == {"steps": 37, "steps.DQ": 37}  # the queue and its delay queue
    finally:
        worker.stop()
        broker.close()
