"""Resource types the emulator serves: the built-in catalog and the registry of served types.

`ResourceRegistry` answers "which resource is `/apis/<g>/<v>/<plural>`" for routing and discovery;
`resources_from_crd()` turns a CustomResourceDefinition into the types it serves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")
CRD_GROUP = "apiextensions.k8s.io"
CRD_PLURAL = "customresourcedefinitions"
CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
RBAC_GROUP = "rbac.authorization.k8s.io"
WEBHOOK_GROUP = "admissionregistration.k8s.io"
AUTHN_GROUP = "authentication.k8s.io"
AUTHZ_GROUP = "authorization.k8s.io"


@dataclass(frozen=True, eq=False)
class ResourceType:
    """One served group/version/resource with what discovery and the write path need to know."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    verbs: tuple[str, ...] = ALL_VERBS
    schema: Json | None = None
    printer_columns: tuple[Json, ...] = ()
    custom: bool = False
    storage: bool = True
    crd_name: str = ""
    extra: Json = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


def _core(plural: str, kind: str, **kw: Any) -> ResourceType:
    return ResourceType("", "v1", plural, kind.lower(), kind, **kw)


def _review(group: str, plural: str, kind: str, namespaced: bool = False) -> ResourceType:
    """A create-only kind that answers a question and stores nothing (TokenReview, SubjectAccessReview, ...)."""
    return ResourceType(group, "v1", plural, kind.lower(), kind, namespaced=namespaced, verbs=("create",))


_STATUS = frozenset({"status"})
BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    _core(
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        subresources=_STATUS,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _core("events", "Event", short_names=("ev",)),
    _core("configmaps", "ConfigMap", short_names=("cm",)),
    _core("secrets", "Secret"),
    _core("pods", "Pod", short_names=("po",), categories=("all",), subresources=_STATUS),
    _core("services", "Service", short_names=("svc",), categories=("all",), subresources=_STATUS),
    _core("serviceaccounts", "ServiceAccount", short_names=("sa",), subresources=frozenset({"token"})),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        short_names=("deploy",),
        categories=("all",),
        subresources=frozenset({"status", "scale"}),
    ),
    ResourceType("events.k8s.io", "v1", "events", "event", "Event", short_names=("ev",)),
    ResourceType(
        CRD_GROUP,
        "v1",
        CRD_PLURAL,
        "customresourcedefinition",
        "CustomResourceDefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        subresources=frozenset({"status"}),
    ),
    ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease"),
    ResourceType(RBAC_GROUP, "v1", "roles", "role", "Role"),
    ResourceType(RBAC_GROUP, "v1", "rolebindings", "rolebinding", "RoleBinding"),
    ResourceType(RBAC_GROUP, "v1", "clusterroles", "clusterrole", "ClusterRole", namespaced=False),
    ResourceType(RBAC_GROUP, "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", namespaced=False),
    ResourceType(
        WEBHOOK_GROUP,
        "v1",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        "MutatingWebhookConfiguration",
        namespaced=False,
        categories=("api-extensions",),
    ),
    ResourceType(
        WEBHOOK_GROUP,
        "v1",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
        "ValidatingWebhookConfiguration",
        namespaced=False,
        categories=("api-extensions",),
    ),
    _review(AUTHN_GROUP, "tokenreviews", "TokenReview"),
    _review(AUTHN_GROUP, "selfsubjectreviews", "SelfSubjectReview"),
    _review(AUTHZ_GROUP, "subjectaccessreviews", "SubjectAccessReview"),
    _review(AUTHZ_GROUP, "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
    _review(AUTHZ_GROUP, "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
    _review(AUTHZ_GROUP, "localsubjectaccessreviews", "LocalSubjectAccessReview", namespaced=True),
)
REVIEWS = frozenset(rt.key for rt in BUILTIN_RESOURCES if rt.verbs == ("create",))

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key for Kubernetes version names: GA > beta > alpha, higher numbers first, others last."""
    match = _VERSION_RE.match(version)
    if not match:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), version)


def resources_from_crd(crd: Json) -> list[ResourceType]:
    """The resource types a CRD serves: one per served version."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    plural = names.get("plural", "")
    kind = names.get("kind", "")
    result: list[ResourceType] = []
    for ver in spec.get("versions") or []:
        if not ver.get("served", True):
            continue
        subresources = set((ver.get("subresources") or spec.get("subresources") or {}).keys())
        schema = (ver.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema")
        columns = ver.get("additionalPrinterColumns")
        if columns is None:
            columns = spec.get("additionalPrinterColumns") or []
        result.append(
            ResourceType(
                group=group,
                version=ver.get("name", ""),
                plural=plural,
                singular=names.get("singular") or kind.lower(),
                kind=kind,
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset(subresources),
                schema=schema,
                printer_columns=tuple(columns),
                custom=True,
                storage=bool(ver.get("storage", False)),
                crd_name=crd["metadata"]["name"],
                extra={"scale": (ver.get("subresources") or {}).get("scale")},
            )
        )
    return result


class ResourceRegistry:
    """All resource types being served, indexed by group/version/plural and by group."""

    def __init__(self, builtins: tuple[ResourceType, ...] = BUILTIN_RESOURCES) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        self._by_crd: dict[str, list[ResourceType]] = {}
        for rt in builtins:
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._by_gvr[(rt.group, rt.version, rt.plural)] = rt

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._by_gvr.values()))

    def group_versions(self) -> dict[str, list[str]]:
        """Every served group with its versions, preferred version first."""
        groups: dict[str, set[str]] = {}
        for group, version, _ in self._by_gvr:
            groups.setdefault(group, set()).add(version)
        return {g: sorted(vs, key=version_priority) for g, vs in groups.items()}

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for (g, v, _), rt in self._by_gvr.items() if g == group and v == version]

    def storage_version(self, group: str, plural: str) -> ResourceType | None:
        """The version objects of this resource are stored in (the CRD's storage version)."""
        candidates = [rt for (g, _, p), rt in self._by_gvr.items() if g == group and p == plural]
        for rt in candidates:
            if rt.storage:
                return rt
        return min(candidates, key=lambda rt: version_priority(rt.version)) if candidates else None

    def register_crd(self, crd: Json) -> list[ResourceType]:
        """Serve the CRD's versions, replacing whatever it served before."""
        name = crd["metadata"]["name"]
        self.unregister_crd(name)
        served = resources_from_crd(crd)
        for rt in served:
            self.add(rt)
        self._by_crd[name] = served
        return served

    def unregister_crd(self, name: str) -> list[ResourceType]:
        removed = self._by_crd.pop(name, [])
        for rt in removed:
            self._by_gvr.pop((rt.group, rt.version, rt.plural), None)
        return removed
