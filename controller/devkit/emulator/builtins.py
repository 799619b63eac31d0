"""What the real API server does for specific built-in kinds on create and update.

Namespaces get their phase and `kubernetes` finalizer, Deployments and Services their defaults and
basic validation, Secrets fold `stringData` into `data`, CRDs get validated and their `status`; RBAC
objects and webhook configurations are checked in `accesskinds.py`.
`preparing.py` calls `prepare_builtin()` for every write of a non-custom resource.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from . import accesskinds
from .apierrors import FieldError
from .objectmeta import now_rfc3339
from .resourcetypes import CRD_CLEANUP_FINALIZER, CRD_GROUP, RBAC_GROUP, WEBHOOK_GROUP, ResourceType, version_priority

Json = dict[str, Any]
_service_ips = itertools.count(10)


def _namespace(obj: Json, old: Json | None) -> list[FieldError]:
    meta = obj["metadata"]
    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
    if old is None:
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
    return []


def _containers(spec: Any, path: str) -> list[FieldError]:
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not containers:
        return [FieldError("FieldValueRequired", f"{path}.containers")]
    errors = []
    for i, container in enumerate(containers):
        for field in ("name", "image"):
            if not isinstance(container, dict) or not container.get(field):
                errors.append(FieldError("FieldValueRequired", f"{path}.containers[{i}].{field}"))
        if isinstance(container, dict) and container.get("image"):
            tag = container["image"].rsplit("/", 1)[-1]
            latest = ":" not in tag or tag.endswith(":latest")
            container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
    return errors


def _deployment(obj: Json, old: Json | None) -> list[FieldError]:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault(
        "strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    )
    errors: list[FieldError] = []
    selector = spec.get("selector")
    template = spec.get("template") or {}
    if not isinstance(selector, dict) or not selector:
        errors.append(FieldError("FieldValueRequired", "spec.selector"))
    else:
        labels = (template.get("metadata") or {}).get("labels") or {}
        wanted = selector.get("matchLabels") or {}
        if any(labels.get(k) != v for k, v in wanted.items()):
            errors.append(
                FieldError(
                    "FieldValueInvalid",
                    "spec.template.metadata.labels",
                    "`selector` does not match template `labels`",
                    labels,
                )
            )
        if old is not None and (old.get("spec") or {}).get("selector") != selector:
            errors.append(FieldError("FieldValueInvalid", "spec.selector", "field is immutable", selector))
    if not isinstance(spec.get("replicas"), int) or spec["replicas"] < 0:
        errors.append(
            FieldError("FieldValueInvalid", "spec.replicas", "must be greater than or equal to 0", spec.get("replicas"))
        )
    errors += _containers(template.get("spec"), "spec.template.spec")
    if isinstance(template.get("spec"), dict):
        template["spec"].setdefault("restartPolicy", "Always")
        template["spec"].setdefault("dnsPolicy", "ClusterFirst")
        template["spec"].setdefault("terminationGracePeriodSeconds", 30)
        template["spec"].setdefault("schedulerName", "default-scheduler")
    if old is None:
        obj["status"] = {}
    return errors


def _pod(obj: Json, old: Json | None) -> list[FieldError]:
    errors = _containers(obj.get("spec"), "spec")
    if old is None:
        obj["status"] = {"phase": "Pending"}
    return errors


def _service(obj: Json, old: Json | None) -> list[FieldError]:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if old is not None and (old.get("spec") or {}).get("clusterIP"):
        spec["clusterIP"] = old["spec"]["clusterIP"]
    elif spec.get("clusterIP") != "None":
        n = next(_service_ips)
        spec["clusterIP"] = f"10.96.{n // 250}.{n % 250 + 1}"
    spec["clusterIPs"] = [spec["clusterIP"]]
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    if old is None:
        obj["status"] = {"loadBalancer": {}}
    return []


def _secret(obj: Json, old: Json | None) -> list[FieldError]:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    return []


def _crd(obj: Json, old: Json | None) -> list[FieldError]:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    errors: list[FieldError] = []
    for field in ("group", "scope"):
        if not spec.get(field):
            errors.append(FieldError("FieldValueRequired", f"spec.{field}"))
    for field in ("plural", "kind"):
        if not names.get(field):
            errors.append(FieldError("FieldValueRequired", f"spec.names.{field}"))
    versions = spec.get("versions") or []
    if not versions:
        errors.append(FieldError("FieldValueRequired", "spec.versions"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        errors.append(
            FieldError(
                "FieldValueInvalid",
                "spec.versions",
                "must have exactly one version marked as storage version",
                [v.get("name") for v in versions],
            )
        )
    expected = f"{names.get('plural')}.{spec.get('group')}"
    if obj["metadata"].get("name") != expected:
        errors.append(
            FieldError(
                "FieldValueInvalid",
                "metadata.name",
                'must be spec.names.plural+"."+spec.group',
                obj["metadata"].get("name"),
            )
        )
    if errors:
        return errors
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    spec.setdefault("conversion", {"strategy": "None"})
    finalizers = obj["metadata"].setdefault("finalizers", [])
    if old is None and CRD_CLEANUP_FINALIZER not in finalizers:
        finalizers.append(CRD_CLEANUP_FINALIZER)
    stored = set(((old or {}).get("status") or {}).get("storedVersions") or [])
    stored |= {v["name"] for v in versions if v.get("storage")}
    old_conditions = ((old or {}).get("status") or {}).get("conditions") or [{}]
    stamp = old_conditions[0].get("lastTransitionTime") or now_rfc3339()
    obj["status"] = {
        "acceptedNames": {
            k: names[k] for k in ("plural", "singular", "kind", "listKind", "shortNames", "categories") if k in names
        },
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": stamp,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": stamp,
            },
        ],
        "storedVersions": sorted(stored, key=version_priority),
    }
    return []


_PREPARERS = {
    ("", "namespaces"): _namespace,
    ("apps", "deployments"): _deployment,
    ("", "pods"): _pod,
    ("", "services"): _service,
    ("", "secrets"): _secret,
    (CRD_GROUP, "customresourcedefinitions"): _crd,
    (RBAC_GROUP, "roles"): accesskinds.role,
    (RBAC_GROUP, "clusterroles"): accesskinds.cluster_role,
    (RBAC_GROUP, "rolebindings"): accesskinds.role_binding,
    (RBAC_GROUP, "clusterrolebindings"): accesskinds.cluster_role_binding,
    (WEBHOOK_GROUP, "mutatingwebhookconfigurations"): accesskinds.mutating_webhooks,
    (WEBHOOK_GROUP, "validatingwebhookconfigurations"): accesskinds.validating_webhooks,
}


def prepare_builtin(rt: ResourceType, obj: Json, old: Json | None) -> list[FieldError]:
    """Default and validate a built-in object in place; returns field errors (empty when valid)."""
    preparer = _PREPARERS.get(rt.key)
    return preparer(obj, old) if preparer else []
