"""What `ringpilot dev` gives each child and where it keeps its state."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.devkit.stack import refuse_leftovers, resolve_data_dir, scrubbed_environment


def test_each_child_gets_only_the_secrets_it_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_planted")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "planted")
    monkeypatch.setenv("RINGPILOT_LOG_FORMAT", "json")
    secrets = {
        "RINGPILOT_DATABASE_URL": "postgresql://postgres:pw@127.0.0.1:1/ringpilot",
        "RINGPILOT_ANTHROPIC_API_KEY": "sk-ant-planted-0123456789",
    }
    worker, controller, emulator = (scrubbed_environment(n, secrets) for n in ("worker", "controller", "emulator"))
    assert worker["RINGPILOT_ANTHROPIC_API_KEY"] == secrets["RINGPILOT_ANTHROPIC_API_KEY"]
    assert controller["RINGPILOT_DATABASE_URL"] == secrets["RINGPILOT_DATABASE_URL"]
    assert "RINGPILOT_ANTHROPIC_API_KEY" not in controller
    assert not {"RINGPILOT_DATABASE_URL", "RINGPILOT_ANTHROPIC_API_KEY"} & set(emulator)
    for env in (worker, controller, emulator):
        assert "GITHUB_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env
        assert env["RINGPILOT_LOG_FORMAT"] == "json" and "PATH" in env


def test_the_flag_overrides_the_environment_which_overrides_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RINGPILOT_DATA_DIR", raising=False)
    assert resolve_data_dir(None) == tmp_path / ".ringpilot"
    monkeypatch.setenv("RINGPILOT_DATA_DIR", "from-env")
    assert resolve_data_dir(None) == tmp_path / "from-env"
    assert resolve_data_dir("from-flag") == tmp_path / "from-flag"


def test_no_leftovers_means_no_refusal(tmp_path: Path) -> None:
    assert refuse_leftovers(tmp_path) is None
