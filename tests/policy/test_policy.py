"""The policy file: the shipped dev policy, role mapping, and errors that name the file and field."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
import yaml

from controller.api.policy import (
    ROLE_PERMISSIONS,
    Permission,
    Policy,
    PolicyError,
    RingName,
    Role,
    load_policy,
    may,
    parse_policy,
)

SHIPPED = Path(__file__).parents[2] / "controller" / "policy" / "dev.yaml"


def shipped() -> dict[str, object]:
    data = yaml.safe_load(SHIPPED.read_text())
    assert isinstance(data, dict)
    return data


def write(tmp_path: Path, data: object, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_the_shipped_policy_holds_the_domain_ring_table() -> None:
    policy = load_policy(None)
    assert [(r.ring, r.name, r.success_threshold) for r in policy.rings] == [
        (0, RingName.LAB, 0.95),
        (1, RingName.CANARY, 0.98),
        (2, RingName.PILOT, 0.97),
        (3, RingName.DEPARTMENT, 0.99),
        (4, RingName.GLOBAL, 0.99),
    ]
    assert [r.cab_required_above_risk for r in policy.rings] == [None, None, 50, 50, 50]
    assert policy.ring(2).name is RingName.PILOT
    assert policy.risk.auto_approve_max_score == 50
    assert policy.remediation.max_attempts == 3
    assert policy.remediation.autonomous_max_ring == 1
    assert policy.windows == []


def test_the_shipped_policy_is_package_data() -> None:
    assert load_policy(None) == load_policy(SHIPPED)


@pytest.mark.parametrize(
    ("user", "role"),
    [
        ("dev-admin", Role.ADMIN),
        ("dev-publisher", Role.PUBLISHER),
        ("dev-approver", Role.CAB_APPROVER),
        ("dev-operator", Role.OPERATOR),
        ("dev-viewer", Role.VIEWER),
        ("somebody-else", Role.VIEWER),
    ],
)
def test_dev_users_hold_one_role_each_and_strangers_are_viewers(user: str, role: Role) -> None:
    assert load_policy(None).role_for(user) is role


def test_groups_map_to_roles_and_the_more_restrictive_of_publisher_and_approver_wins() -> None:
    policy = load_policy(None)
    assert policy.role_for("alice", ["ringpilot-endpoint-ops"]) is Role.OPERATOR
    assert policy.role_for("alice", ["unknown", "ringpilot-release-managers"]) is Role.PUBLISHER
    both = ["ringpilot-release-managers", "ringpilot-cab"]
    assert policy.role_for("alice", both) is Role.CAB_APPROVER
    assert policy.role_for("alice", list(reversed(both))) is Role.CAB_APPROVER
    assert policy.role_for("alice", ["unknown"]) is Role.VIEWER


def test_a_user_entry_wins_over_groups() -> None:
    policy = load_policy(None)
    assert policy.role_for("dev-viewer", ["ringpilot-release-managers"]) is Role.VIEWER
    assert policy.permissions_for("dev-viewer", ["ringpilot-cab"]) == {Permission.READ}


def test_the_role_table_separates_duties() -> None:
    assert ROLE_PERMISSIONS[Role.VIEWER] == {Permission.READ}
    assert ROLE_PERMISSIONS[Role.OPERATOR] == {
        Permission.READ,
        Permission.REMEDIATE,
        Permission.RESTART,
        Permission.ROLLBACK,
    }
    assert ROLE_PERMISSIONS[Role.PUBLISHER] == {
        Permission.READ,
        Permission.DEPLOY,
        Permission.SUBMIT_CAB,
        Permission.ROLLBACK,
        Permission.CANCEL,
    }
    assert ROLE_PERMISSIONS[Role.CAB_APPROVER] == {Permission.READ, Permission.APPROVE}
    assert may(Role.ADMIN, Permission.ADMIN)
    assert may(Role.ADMIN, Permission.CANCEL)
    for role, permissions in ROLE_PERMISSIONS.items():
        assert Permission.READ in permissions, role
        assert not {Permission.DEPLOY, Permission.APPROVE} <= permissions, f"{role} can ship and approve"
    assert not may(Role.ADMIN, Permission.DEPLOY)
    assert not may(Role.ADMIN, Permission.APPROVE)
    assert not may(Role.CAB_APPROVER, Permission.DEPLOY)
    assert set(ROLE_PERMISSIONS) == set(Role)


def test_sections_other_than_rings_may_be_empty_or_left_out(tmp_path: Path) -> None:
    data = shipped()
    data.update(roles=None, risk=None, remediation={}, windows=None)
    policy = load_policy(write(tmp_path, data))
    assert policy.roles.users == {}
    assert policy.risk.privileged_apps == []
    assert policy.role_for("dev-admin") is Role.VIEWER

    minimal = load_policy(write(tmp_path, {"rings": data["rings"]}, "minimal.yaml"))
    assert minimal.version == "unversioned"
    assert minimal.remediation.max_backoff_seconds == 14400


def test_snake_case_keys_are_accepted_too() -> None:
    policy = Policy.model_validate(
        {
            "rings": [
                {"ring": n, "name": name.value, "success_threshold": 0.9, "min_soak_seconds": 0}
                for n, name in enumerate(RingName)
            ],
            "risk": {"auto_approve_max_score": 40, "privileged_apps": ["vpn-client"]},
        }
    )
    assert policy.risk.auto_approve_max_score == 40
    assert policy.risk.privileged_apps == ["vpn-client"]


def test_windows_are_validated(tmp_path: Path) -> None:
    data = shipped()
    data["windows"] = [
        {
            "name": "nights",
            "rings": [2, 3],
            "days": ["Mon", "Tue"],
            "start": "22:00",
            "end": "04:00",
            "timezone": "Europe/Berlin",
        }
    ]
    window = load_policy(write(tmp_path, data)).windows[0]
    assert (window.start, window.end, window.rings) == (time(22, 0), time(4, 0), [2, 3])


def set_ring_field(ring: int, key: str, value: object) -> dict[str, object]:
    data = shipped()
    rings = data["rings"]
    assert isinstance(rings, list)
    rings[ring][key] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            set_ring_field(2, "successThreshold", 1.5),
            "rings.2.successThreshold: Input should be less than or equal to 1",
        ),
        (set_ring_field(0, "minSoakSeconds", -1), "rings.0.minSoakSeconds: Input should be greater than or equal to 0"),
        (
            set_ring_field(3, "cabRequiredAboveRisk", 101),
            "rings.3.cabRequiredAboveRisk: Input should be less than or equal to 100",
        ),
        (set_ring_field(1, "name", "Pilot"), "rings.1.name: ring 1 is named 'Canary', not 'Pilot'"),
        (
            set_ring_field(1, "name", "Beta"),
            "rings.1.name: Input should be 'Lab', 'Canary', 'Pilot', 'Department' or 'Global'",
        ),
        (set_ring_field(4, "soak", 3), "rings.4.soak: Extra inputs are not permitted"),
        (
            {**shipped(), "rings": shipped()["rings"][:4]},  # type: ignore[index]
            "rings: must list rings 0, 1, 2, 3, 4 exactly once, in order (got 0, 1, 2, 3)",
        ),
        (
            {**shipped(), "rings": [shipped()["rings"][i] for i in (0, 2, 1, 3, 4)]},  # type: ignore[index]
            "rings: must list rings 0, 1, 2, 3, 4 exactly once, in order (got 0, 2, 1, 3, 4)",
        ),
        (
            {**shipped(), "rings": [shipped()["rings"][i] for i in (0, 1, 1, 3, 4)]},  # type: ignore[index]
            "rings: must list rings 0, 1, 2, 3, 4 exactly once, in order (got 0, 1, 1, 3, 4)",
        ),
        ({k: v for k, v in shipped().items() if k != "rings"}, "rings: Field required"),
        (
            {**shipped(), "roles": {"users": {"mallory": "root"}}},
            "roles.users.mallory: Input should be 'viewer', 'operator', 'publisher', 'cab-approver' or 'admin'",
        ),
        (
            {**shipped(), "risk": {"autoApproveMaxScore": 500}},
            "risk.autoApproveMaxScore: Input should be less than or equal to 100",
        ),
        (
            {**shipped(), "risk": {"privilegedApps": ["Not An App"]}},
            "risk.privilegedApps.0: String should match pattern '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'",
        ),
        (
            {**shipped(), "remediation": {"maxAttempts": 0}},
            "remediation.maxAttempts: Input should be greater than or equal to 1",
        ),
        (
            {**shipped(), "windows": [{"name": "w", "start": "22:00", "end": "23:00", "timezone": "Mars/Zone"}]},
            "windows.0.timezone: unknown time zone 'Mars/Zone'",
        ),
        (
            {**shipped(), "windows": [{"name": "w", "start": 1320, "end": "23:00"}]},
            'windows.0.start: write times as quoted strings, e.g. "22:00"',
        ),
        ({**shipped(), "gates": {}}, "gates: Extra inputs are not permitted"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_bad_file_names_the_file_and_field(tmp_path: Path, data: dict[str, object], message: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert f"{path}: {message}" in str(raised.value).splitlines()


def test_unquoted_times_read_as_numbers_by_yaml_are_refused(tmp_path: Path) -> None:
    text = SHIPPED.read_text().replace("windows: []", "windows:\n  - {name: w, start: 22:00, end: '23:00'}")
    with pytest.raises(PolicyError, match=r"windows\.0\.start: write times as quoted strings"):
        load_policy(write(tmp_path, text))


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "version: x\nrings: [\n  {ring: 0\n")
    with pytest.raises(PolicyError, match=rf"^{path}: line \d+: "):
        load_policy(path)


def test_duplicate_keys_are_refused_not_silently_overridden(tmp_path: Path) -> None:
    text = SHIPPED.read_text().replace("dev-viewer: viewer", "dev-viewer: viewer\n    dev-admin: viewer")
    with pytest.raises(PolicyError, match=r"line \d+: duplicate key 'dev-admin'"):
        load_policy(write(tmp_path, text))


@pytest.mark.parametrize("text", ["", "- rings\n", "just a string\n"])
def test_the_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError, match=rf"^{path}: top level must be a mapping"):
        load_policy(path)


def test_a_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(PolicyError, match=rf"^{path}: cannot read: No such file or directory"):
        load_policy(path)


def test_parse_policy_names_its_source() -> None:
    with pytest.raises(PolicyError, match=r"^configmap/ringpilot-policy: rings: Field required"):
        parse_policy("version: x\n", source="configmap/ringpilot-policy")
