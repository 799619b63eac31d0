"""The settings that spread Ringpilot over machines: namespace globs, peering, worker queues and prefetch."""

from __future__ import annotations

import dramatiq.cli
import pytest

from controller.cli import build_parser
from controller.settings import ControllerSettings, SettingsError, WorkerSettings, load_settings
from controller.worker.boot import worker_argv


def test_a_shard_watches_namespace_globs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGPILOT_NAMESPACE", "ring-0-*, ring-1-?,!ring-1-old")
    assert load_settings(ControllerSettings).namespace == ["ring-0-*", "ring-1-?", "!ring-1-old"]


def test_a_namespace_glob_with_a_slash_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGPILOT_NAMESPACE", "ring/0")
    with pytest.raises(SettingsError, match="RINGPILOT_NAMESPACE"):
        load_settings(ControllerSettings)


def test_peering_is_off_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(ControllerSettings).peering is None
    monkeypatch.setenv("RINGPILOT_PEERING", "ringpilot-early")
    monkeypatch.setenv("RINGPILOT_PEERING_PRIORITY", "5")
    settings = load_settings(ControllerSettings)
    assert (settings.peering, settings.peering_priority) == ("ringpilot-early", 5)


@pytest.mark.parametrize(
    ("variable", "value"), [("RINGPILOT_PEERING", "Not_A_Name"), ("RINGPILOT_PEERING_PRIORITY", "0")]
)
def test_a_bad_peering_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings(ControllerSettings)


def test_a_worker_consumes_only_its_queues() -> None:
    args = dramatiq.cli.make_argument_parser().parse_args(worker_argv(WorkerSettings(queues=["turns"])))
    assert args.queues == ["turns"]
    everything = dramatiq.cli.make_argument_parser().parse_args(worker_argv(WorkerSettings()))
    assert not everything.queues


def test_queues_come_from_the_environment_or_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGPILOT_QUEUES", "steps, turns")
    assert load_settings(WorkerSettings).queues == ["steps", "turns"]
    parser, _ = build_parser()
    assert parser.parse_args(["worker", "--queues", "turns"]).queues == "turns"


def test_an_unknown_queue_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGPILOT_QUEUES", "turns,urgent")
    with pytest.raises(SettingsError, match=r"RINGPILOT_QUEUES\[1\]"):
        load_settings(WorkerSettings)


def test_prefetch_must_not_be_negative(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGPILOT_QUEUE_PREFETCH", "-1")
    with pytest.raises(SettingsError, match="RINGPILOT_QUEUE_PREFETCH"):
        load_settings(WorkerSettings)
