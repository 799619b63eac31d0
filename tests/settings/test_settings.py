"""Settings read RINGPILOT_* variables, and a wrong value names the variable the user set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from controller.settings import (
    CommonSettings,
    ControllerSettings,
    SettingsError,
    WorkerSettings,
    load_settings,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("RINGPILOT_"):
            monkeypatch.delenv(key)


def test_defaults_need_no_environment() -> None:
    controller = load_settings(ControllerSettings)
    assert controller.database_url is None
    assert controller.redis_url is None
    assert controller.data_dir == Path(".ringpilot")
    assert controller.policy_file is None
    assert (controller.log_level, controller.log_format) == ("INFO", "plain")
    assert controller.namespace is None
    assert controller.resync_interval_seconds == 60
    assert controller.liveness_port == 8081

    worker = load_settings(WorkerSettings)
    assert (worker.min_backoff_ms, worker.max_backoff_ms, worker.max_retries) == (500, 60_000, 10)
    assert worker.processes >= 1
    assert worker.threads >= 1
    assert worker.time_limit_ms > 0


def test_every_field_is_documented() -> None:
    for cls in (CommonSettings, ControllerSettings, WorkerSettings):
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description"


def test_values_come_from_prefixed_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("rings: []\n")
    monkeypatch.setenv("RINGPILOT_DATABASE_URL", "postgresql://rp:secret@db:5432/ringpilot")
    monkeypatch.setenv("RINGPILOT_REDIS_URL", "unix:///run/redis.sock?db=2")
    monkeypatch.setenv("RINGPILOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RINGPILOT_POLICY_FILE", str(policy))
    monkeypatch.setenv("RINGPILOT_LOG_LEVEL", "debug")
    monkeypatch.setenv("RINGPILOT_LOG_FORMAT", "json")
    monkeypatch.setenv("RINGPILOT_NAMESPACE", "team-a, team-b")
    monkeypatch.setenv("RINGPILOT_RESYNC_INTERVAL_SECONDS", "15")
    monkeypatch.setenv("RINGPILOT_LIVENESS_PORT", "0")

    settings = load_settings(ControllerSettings)

    assert settings.database_url == "postgresql://rp:secret@db:5432/ringpilot"
    assert settings.redis_url == "unix:///run/redis.sock?db=2"
    assert settings.data_dir == tmp_path
    assert settings.policy_file == policy
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")
    assert settings.namespace == ["team-a", "team-b"]
    assert settings.resync_interval_seconds == 15
    assert settings.liveness_port == 0


def test_passwords_stay_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGPILOT_DATABASE_URL", "postgresql://rp:hunter2@db/ringpilot")
    monkeypatch.setenv("RINGPILOT_REDIS_URL", "redis://:hunter2@cache:6379/0")
    assert "hunter2" not in repr(load_settings(WorkerSettings))


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGPILOT_DATABASE_URL", "")
    monkeypatch.setenv("RINGPILOT_NAMESPACE", "")
    settings = load_settings(ControllerSettings)
    assert settings.database_url is None
    assert settings.namespace is None


def test_settings_are_frozen() -> None:
    settings = load_settings(ControllerSettings)
    with pytest.raises(ValidationError):
        settings.liveness_port = 9090  # type: ignore[misc]


def test_a_wrong_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGPILOT_RESYNC_INTERVAL_SECONDS", "-5")
    with pytest.raises(SettingsError) as raised:
        load_settings(ControllerSettings)
    assert str(raised.value) == "RINGPILOT_RESYNC_INTERVAL_SECONDS: Input should be greater than 0"


def test_the_variable_is_spelt_as_the_user_wrote_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ringpilot_liveness_port", "http")
    with pytest.raises(SettingsError, match=r"^ringpilot_liveness_port: Input should be a valid integer"):
        load_settings(ControllerSettings)


def test_every_bad_variable_gets_a_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RINGPILOT_DATABASE_URL", "redis://localhost:6379/0")
    monkeypatch.setenv("RINGPILOT_REDIS_URL", "http://localhost")
    monkeypatch.setenv("RINGPILOT_POLICY_FILE", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("RINGPILOT_LOG_LEVEL", "chatty")
    monkeypatch.setenv("RINGPILOT_LOG_FORMAT", "xml")
    monkeypatch.setenv("RINGPILOT_NAMESPACE", "ok,Not_OK")
    monkeypatch.setenv("RINGPILOT_LIVENESS_PORT", "70000")

    with pytest.raises(SettingsError) as raised:
        load_settings(ControllerSettings)

    lines = str(raised.value).splitlines()
    assert lines == [
        "RINGPILOT_DATABASE_URL: scheme 'redis' is not a PostgreSQL URL (use postgresql://)",
        "RINGPILOT_REDIS_URL: scheme 'http' is not one of redis://, rediss://, unix://",
        "RINGPILOT_POLICY_FILE: Path does not point to a file",
        "RINGPILOT_LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'",
        "RINGPILOT_LOG_FORMAT: Input should be 'plain' or 'json'",
        "RINGPILOT_NAMESPACE: 'Not_OK' is not a valid namespace name or glob (DNS-1123 label, * or ?)",
        "RINGPILOT_LIVENESS_PORT: Input should be less than or equal to 65535",
    ]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "RINGPILOT_MAX_BACKOFF_MS",
            "100",
            "RINGPILOT_MAX_BACKOFF_MS: must not be less than RINGPILOT_MIN_BACKOFF_MS (500)",
        ),
        ("RINGPILOT_MIN_BACKOFF_MS", "0", "RINGPILOT_MIN_BACKOFF_MS: Input should be greater than 0"),
        ("RINGPILOT_PROCESSES", "0", "RINGPILOT_PROCESSES: Input should be greater than or equal to 1"),
        ("RINGPILOT_MAX_RETRIES", "-1", "RINGPILOT_MAX_RETRIES: Input should be greater than or equal to 0"),
        (
            "RINGPILOT_TIME_LIMIT_MS",
            "1.5",
            "RINGPILOT_TIME_LIMIT_MS: Input should be a valid integer, unable to parse string as an integer",
        ),
    ],
)
def test_worker_limits_are_checked(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(WorkerSettings)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "url",
    ["postgresql://localhost/db", "postgres://u:p@h:5433/db?sslmode=require", "host=db dbname=ringpilot"],
)
def test_database_urls_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("RINGPILOT_DATABASE_URL", url)
    assert load_settings(CommonSettings).database_url == url


@pytest.mark.parametrize("url", ["not a dsn", "postgresql://h/db?nonsense=1"])
def test_database_urls_libpq_rejects_are_errors(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("RINGPILOT_DATABASE_URL", url)
    with pytest.raises(SettingsError, match=r"^RINGPILOT_DATABASE_URL: not a PostgreSQL connection string"):
        load_settings(CommonSettings)
