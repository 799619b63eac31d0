"""AgentSettings: provider choice (offline without a key), secrets never shown, validation naming the variable."""

from __future__ import annotations

import pytest

from agent.settings import AgentSettings
from controller.api.conversation import LLMRef, Provider
from controller.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (
        "RINGPILOT_LLM_PROVIDER",
        "RINGPILOT_LLM_MODEL",
        "RINGPILOT_ANTHROPIC_API_KEY",
        "RINGPILOT_OPENAI_BASE_URL",
        "RINGPILOT_OPENAI_API_KEY",
    ):
        monkeypatch.delenv(key, raising=False)


def test_offline_is_the_default_without_a_key() -> None:
    settings = AgentSettings()
    assert settings.default_provider() is Provider.OFFLINE
    assert settings.provider_for(None) == (Provider.OFFLINE, "offline-router-1")


def test_a_key_selects_anthropic_and_a_conversation_may_ask_for_another(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGPILOT_ANTHROPIC_API_KEY", "sk-secret-value")
    monkeypatch.setenv("RINGPILOT_LLM_MODEL", "claude-custom")
    settings = load_settings(AgentSettings)
    assert settings.provider_for(None) == (Provider.ANTHROPIC, "claude-custom")
    assert settings.provider_for(LLMRef(provider=Provider.OPENAI)) == (Provider.OPENAI, "gpt-4o-mini")
    assert settings.provider_for(LLMRef(provider=Provider.OFFLINE, model="x")) == (Provider.OFFLINE, "x")
    assert "sk-secret-value" not in repr(settings) and "sk-secret-value" not in str(settings.model_dump())


def test_an_openai_compatible_url_selects_openai_and_an_explicit_provider_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGPILOT_OPENAI_BASE_URL", "http://127.0.0.1:8000/v1/")
    settings = load_settings(AgentSettings)
    assert settings.default_provider() is Provider.OPENAI and settings.openai_base_url == "http://127.0.0.1:8000/v1"
    monkeypatch.setenv("RINGPILOT_LLM_PROVIDER", "offline")
    assert load_settings(AgentSettings).default_provider() is Provider.OFFLINE


def test_backoff_doubles_and_is_capped() -> None:
    settings = AgentSettings(turn_min_backoff_ms=1000, turn_max_backoff_ms=5000)
    assert [settings.backoff_ms(n) for n in (1, 2, 3, 4, 5)] == [1000, 2000, 4000, 5000, 5000]


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("RINGPILOT_OPENAI_BASE_URL", "localhost:8000", "RINGPILOT_OPENAI_BASE_URL: must start with http"),
        ("RINGPILOT_TURN_MAX_BACKOFF_MS", "10", "RINGPILOT_TURN_MAX_BACKOFF_MS: must not be less than"),
        ("RINGPILOT_LLM_PROVIDER", "gpt", "RINGPILOT_LLM_PROVIDER"),
    ],
)
def test_a_wrong_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError, match=message):
        load_settings(AgentSettings)
