"""Classifying drift: compare an Assignment's desired state with what its execution plane observed.

Pure. The drift sweep and the Remediation engine both call `classify_drift`; the result names one
drift type (MissingInstall, VersionMismatch, ConfigurationDrift, ServiceDown) or `Unknown` when the
observation fits none of them. Unknown and security-relevant drift are never fixed by guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controller.api.assignment import AssignmentSpec, DriftType, Observed
from controller.planes.base import Observation, TargetRef

#: Which drift wins when several are seen at once: the first fix often clears the later ones.
PRIORITY: tuple[DriftType, ...] = (
    DriftType.UNKNOWN,
    DriftType.MISSING_INSTALL,
    DriftType.VERSION_MISMATCH,
    DriftType.CONFIGURATION_DRIFT,
    DriftType.SERVICE_DOWN,
)


@dataclass(frozen=True)
class Finding:
    """One drift: its type, what differs, and whether it may be a security issue."""

    type: DriftType
    detail: str
    security_relevant: bool = False


@dataclass(frozen=True)
class Assessment:
    """The verdict on one observation: the drift to act on (None = in sync), and what was ignored."""

    finding: Finding | None
    healthy: bool
    ignored: tuple[Finding, ...] = field(default_factory=tuple)
    recheck_at: datetime | None = None
    observation: Observation | None = None

    @property
    def in_sync(self) -> bool:
        return self.finding is None


def image_repository(image: str) -> str:
    """The repository of an image reference, without tag or digest."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def target_of(spec: AssignmentSpec) -> TargetRef:
    """The plane's reference to an Assignment's target."""
    target = spec.target
    return TargetRef(
        plane=target.plane.value,
        app=spec.app,
        ring=spec.ring,
        namespace=target.namespace,
        name=target.name,
        address=target.address,
    )


def _findings(
    spec: AssignmentSpec, obs: Observation, now: datetime, grace_seconds: float
) -> tuple[list[Finding], datetime | None]:
    found: list[Finding] = []
    if not obs.present:
        return [Finding(DriftType.MISSING_INSTALL, f"{obs.target.key} does not exist")], None
    if spec.artifact and obs.image and image_repository(obs.image) != spec.artifact:
        found.append(
            Finding(
                DriftType.UNKNOWN,
                f"image repository is {image_repository(obs.image)}, not {spec.artifact}",
                security_relevant=True,
            )
        )
    if obs.version is None:
        found.append(Finding(DriftType.UNKNOWN, f"running image {obs.image or '?'} has no version tag"))
    elif obs.version != spec.version:
        found.append(Finding(DriftType.VERSION_MISMATCH, f"running {obs.version}, want {spec.version}"))
    expected = spec.config.sha256 if spec.config else None
    if expected and obs.config_sha256 != expected:
        name = spec.config.config_map if spec.config and spec.config.config_map else "configuration"
        seen = f"hash {obs.config_sha256[:12]}" if obs.config_sha256 else "missing"
        found.append(Finding(DriftType.CONFIGURATION_DRIFT, f"{name} is {seen}, want hash {expected[:12]}"))
    recheck_at = None
    if not obs.available:
        since = obs.unavailable_since
        due = since + timedelta(seconds=grace_seconds) if since is not None else now
        if due <= now:
            ready = f"{obs.ready_replicas}/{obs.replicas} ready"
            found.append(Finding(DriftType.SERVICE_DOWN, f"not available ({ready}) {obs.detail}".strip()))
        else:
            recheck_at = due
    return found, recheck_at


def classify_drift(
    spec: AssignmentSpec, obs: Observation | None, now: datetime, *, grace_seconds: float = 0.0
) -> Assessment:
    """The drift of `obs` against `spec`, honouring `spec.drift.ignore` (never for security drift)."""
    if obs is None:
        return Assessment(Finding(DriftType.UNKNOWN, "the execution plane reported nothing for the target"), False)
    found, recheck_at = _findings(spec, obs, now, grace_seconds)
    found.sort(key=lambda f: (not f.security_relevant, PRIORITY.index(f.type)))
    ignore = set(spec.drift.ignore)
    kept = [f for f in found if f.security_relevant or f.type not in ignore]
    ignored = tuple(f for f in found if f not in kept)
    return Assessment(
        finding=kept[0] if kept else None,
        healthy=obs.present and obs.available and obs.updated,
        ignored=ignored,
        recheck_at=recheck_at,
        observation=obs,
    )


def observed_status(obs: Observation | None) -> Observed | None:
    """The `status.observed` block for an observation."""
    if obs is None:
        return None
    return Observed(
        version=obs.version,
        image=obs.image,
        config_sha256=obs.config_sha256,
        present=obs.present,
        available=obs.available if obs.present else None,
        replicas=obs.replicas if obs.present else None,
        ready_replicas=obs.ready_replicas if obs.present else None,
    )
