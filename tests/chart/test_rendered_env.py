"""Every variable the chart gives a process is one that process reads, and its settings accept the values."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.gateway.settings import GatewaySettings
from agent.settings import AgentSettings
from controller.settings import ENV_PREFIX, CommonSettings, ControllerSettings, WorkerSettings, load_settings
from tests.chart.chartrender import VALUE_SETS, of_kind, render

#: Which settings each subcommand reads (the worker's processes also read the agent's).
READERS: dict[str, tuple[type[CommonSettings], ...]] = {
    "controller": (ControllerSettings,),
    "worker": (WorkerSettings, AgentSettings),
    "gateway": (GatewaySettings,),
    "migrate": (ControllerSettings,),
}
STAND_INS = {
    "RINGPILOT_DATABASE_URL": "postgresql://ringpilot:secret@db:5432/ringpilot",
    "RINGPILOT_REDIS_URL": "redis://:secret@redis:6379/0",
    "RINGPILOT_ANTHROPIC_API_KEY": "sk-test",
    "RINGPILOT_OPENAI_API_KEY": "sk-test",
}


def _processes(name: str) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    docs = render(VALUE_SETS[name])
    for doc in of_kind(docs, "Deployment") + of_kind(docs, "Job"):
        container = doc["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        out.append((doc["metadata"]["name"], container["args"][0], env))
    return out


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_each_rendered_variable_is_read_and_accepted(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    existing = tmp_path / "file"
    existing.write_text("[]\n")
    for deployment, command, env in _processes(name):
        readers = READERS[command]
        known = {f"{ENV_PREFIX}{field}".upper() for cls in readers for field in cls.model_fields}
        ours = {key for key in env if key.startswith(ENV_PREFIX)}
        assert ours <= known, f"{deployment}: {sorted(ours - known)} are read by no settings of `{command}`"
        for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
            monkeypatch.delenv(key)
        for key in ours:
            value = STAND_INS.get(key, env[key])
            if key.endswith("_FILE"):
                value = str(existing)  # a mounted file: the settings insist that it exists
            monkeypatch.setenv(key, value)
        for cls in readers:
            load_settings(cls)  # raises SettingsError naming the variable
        for key in ours:
            monkeypatch.delenv(key)
