"""Drift classification: one type per observation, ignore rules, grace, security-relevant drift."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.api.assignment import AssignmentSpec, DriftType
from controller.planes.base import Observation, TargetRef
from controller.remediation.classifying import classify_drift, image_repository, observed_status, target_of
from tests.remediation.inmemory import NOW, REPO, spec

TARGET = TargetRef("kubernetes", "web", 0, namespace="ring-0-lab", name="web")


def assignment(**extra: Any) -> AssignmentSpec:
    return AssignmentSpec.model_validate(spec(**extra))


def seen(**changes: Any) -> Observation:
    values: dict[str, Any] = {
        "target": TARGET,
        "present": True,
        "version": "1.4.1",
        "image": f"{REPO}/web:1.4.1",
        "config_sha256": "a" * 64,
        "available": True,
        "replicas": 2,
        "ready_replicas": 2,
        "updated": True,
    }
    values.update(changes)
    return Observation(**values)


@pytest.mark.parametrize(
    ("changes", "kind", "detail"),
    [
        ({"present": False}, DriftType.MISSING_INSTALL, "ring-0-lab/web does not exist"),
        ({"version": "1.4.0", "image": f"{REPO}/web:1.4.0"}, DriftType.VERSION_MISMATCH, "running 1.4.0, want 1.4.1"),
        ({"config_sha256": "b" * 64}, DriftType.CONFIGURATION_DRIFT, "web-config is hash bbbbbbbbbbbb"),
        ({"config_sha256": None}, DriftType.CONFIGURATION_DRIFT, "web-config is missing"),
        ({"available": False, "ready_replicas": 0}, DriftType.SERVICE_DOWN, "not available (0/2 ready)"),
        ({"version": None, "image": f"{REPO}/web@sha256:{'c' * 64}"}, DriftType.UNKNOWN, "has no version tag"),
    ],
)
def test_each_kind_of_drift_is_named(changes: dict[str, Any], kind: DriftType, detail: str) -> None:
    result = classify_drift(assignment(), seen(**changes), NOW)
    assert result.finding is not None
    assert result.finding.type is kind
    assert detail in result.finding.detail
    assert not result.in_sync


def test_a_matching_healthy_target_is_in_sync_and_healthy() -> None:
    result = classify_drift(assignment(), seen(), NOW)
    assert result.in_sync and result.healthy and result.ignored == ()


def test_a_target_still_rolling_out_is_in_sync_but_not_yet_healthy() -> None:
    result = classify_drift(assignment(), seen(updated=False), NOW)
    assert result.in_sync and not result.healthy


def test_no_observation_at_all_is_unknown_drift() -> None:
    result = classify_drift(assignment(), None, NOW)
    assert result.finding is not None and result.finding.type is DriftType.UNKNOWN


def test_the_first_fix_wins_when_several_drifts_show_at_once() -> None:
    result = classify_drift(assignment(), seen(version="2.0.0", config_sha256="b" * 64, available=False), NOW)
    assert result.finding is not None and result.finding.type is DriftType.VERSION_MISMATCH


def test_ignored_types_are_reported_but_not_acted_on() -> None:
    result = classify_drift(assignment(drift={"ignore": ["VersionMismatch"]}), seen(version="2.0.0"), NOW)
    assert result.in_sync
    assert [f.type for f in result.ignored] == [DriftType.VERSION_MISMATCH]
    both = classify_drift(
        assignment(drift={"ignore": ["VersionMismatch"]}), seen(version="2.0.0", config_sha256="b" * 64), NOW
    )
    assert both.finding is not None and both.finding.type is DriftType.CONFIGURATION_DRIFT


def test_a_changed_image_repository_is_security_relevant_and_cannot_be_ignored() -> None:
    spec_ = assignment(artifact=f"{REPO}/web", drift={"ignore": ["Unknown", "VersionMismatch"]})
    result = classify_drift(spec_, seen(image="evil.example.com/web:1.4.1"), NOW)
    assert result.finding is not None
    assert (result.finding.type, result.finding.security_relevant) == (DriftType.UNKNOWN, True)
    assert "evil.example.com/web" in result.finding.detail


def test_service_down_waits_for_the_grace_period_and_says_when_to_look_again() -> None:
    since = NOW - timedelta(seconds=30)
    early = classify_drift(assignment(), seen(available=False, unavailable_since=since), NOW, grace_seconds=60)
    assert early.in_sync and not early.healthy
    assert early.recheck_at == since + timedelta(seconds=60)
    late = classify_drift(assignment(), seen(available=False, unavailable_since=since), NOW, grace_seconds=10)
    assert late.finding is not None and late.finding.type is DriftType.SERVICE_DOWN
    assert late.recheck_at is None


def test_configuration_is_only_compared_when_the_assignment_records_a_hash() -> None:
    spec_ = assignment(config=None)
    assert classify_drift(spec_, seen(config_sha256="b" * 64), NOW).in_sync


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("registry.example.com/team/web:1.4.1", "registry.example.com/team/web"),
        ("registry.example.com:5000/web", "registry.example.com:5000/web"),
        ("registry.example.com:5000/web:2", "registry.example.com:5000/web"),
        ("web@sha256:abc", "web"),
    ],
)
def test_image_repositories_drop_tag_and_digest(image: str, repository: str) -> None:
    assert image_repository(image) == repository


def test_targets_and_observed_status_mirror_the_plane() -> None:
    simulated = AssignmentSpec.model_validate(
        {"app": "web", "version": "1", "ring": 2, "target": {"plane": "simulated", "address": "dev-1"}}
    )
    assert target_of(simulated) == TargetRef("simulated", "web", 2, address="dev-1")
    assert observed_status(None) is None
    missing = observed_status(seen(present=False))
    assert missing is not None and missing.present is False and missing.available is None
    shown = observed_status(seen())
    assert shown is not None and (shown.version, shown.ready_replicas) == ("1.4.1", 2)
