"""Defaulting and validation of RBAC objects and webhook configurations, worded as kube-apiserver words them.

`builtins.prepare_builtin()` dispatches Role/ClusterRole, RoleBinding/ClusterRoleBinding and the two
admissionregistration.k8s.io/v1 webhook configuration kinds here.
"""

from __future__ import annotations

from typing import Any

from .apierrors import FieldError

Json = dict[str, Any]
_SIDE_EFFECTS = ("None", "NoneOnDryRun")


def _rules(obj: Json, namespaced: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, rule in enumerate(obj.get("rules") or []):
        path = f"rules[{i}]"
        if not isinstance(rule, dict):
            errors.append(FieldError("FieldValueInvalid", path, "must be an object", rule))
            continue
        if not rule.get("verbs"):
            errors.append(FieldError("FieldValueRequired", f"{path}.verbs", "verbs must contain at least one value"))
        urls = rule.get("nonResourceURLs") or []
        if urls and namespaced:
            errors.append(
                FieldError(
                    "FieldValueInvalid",
                    f"{path}.nonResourceURLs",
                    "namespaced rules cannot apply to non-resource URLs",
                    urls,
                )
            )
        elif urls and (rule.get("apiGroups") or rule.get("resources")):
            errors.append(
                FieldError(
                    "FieldValueInvalid",
                    f"{path}.nonResourceURLs",
                    "rules cannot apply to both regular resources and non-resource URLs",
                    urls,
                )
            )
        elif not urls:
            if not rule.get("apiGroups"):
                errors.append(
                    FieldError(
                        "FieldValueRequired", f"{path}.apiGroups", "resource rules must supply at least one api group"
                    )
                )
            if not rule.get("resources"):
                errors.append(
                    FieldError(
                        "FieldValueRequired", f"{path}.resources", "resource rules must supply at least one resource"
                    )
                )
    return errors


def role(obj: Json, old: Json | None) -> list[FieldError]:
    return _rules(obj, namespaced=True)


def cluster_role(obj: Json, old: Json | None) -> list[FieldError]:
    return _rules(obj, namespaced=False)


def _binding(obj: Json, old: Json | None, kinds: tuple[str, ...], namespaced: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    ref = obj.get("roleRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        errors.append(FieldError("FieldValueRequired", "roleRef.name"))
    elif ref.get("kind") not in kinds:
        supported = ", ".join(f'"{k}"' for k in kinds)
        errors.append(
            FieldError("FieldValueNotSupported", "roleRef.kind", f"supported values: {supported}", ref.get("kind"))
        )
    if old is not None and isinstance(ref, dict) and old.get("roleRef") != ref:
        errors.append(FieldError("FieldValueInvalid", "roleRef", "cannot change roleRef", ref))
    for i, subject in enumerate(obj.get("subjects") or []):
        path = f"subjects[{i}]"
        kind = subject.get("kind") if isinstance(subject, dict) else None
        if kind not in ("User", "Group", "ServiceAccount"):
            errors.append(
                FieldError(
                    "FieldValueNotSupported",
                    f"{path}.kind",
                    'supported values: "ServiceAccount", "User", "Group"',
                    kind,
                )
            )
            continue
        if not subject.get("name"):
            errors.append(FieldError("FieldValueRequired", f"{path}.name"))
        if kind == "ServiceAccount" and not namespaced and not subject.get("namespace"):
            errors.append(FieldError("FieldValueRequired", f"{path}.namespace"))
    return errors


def role_binding(obj: Json, old: Json | None) -> list[FieldError]:
    return _binding(obj, old, ("Role", "ClusterRole"), namespaced=True)


def cluster_role_binding(obj: Json, old: Json | None) -> list[FieldError]:
    return _binding(obj, old, ("ClusterRole",), namespaced=False)


def _webhook(hook: Json, path: str, mutating: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    name = hook.get("name")
    if not name:
        errors.append(FieldError("FieldValueRequired", f"{path}.name"))
    elif len(str(name).split(".")) < 3:
        errors.append(
            FieldError(
                "FieldValueInvalid",
                f"{path}.name",
                "should be a domain with at least three segments separated by dots",
                name,
            )
        )
    hook.setdefault("failurePolicy", "Fail")
    hook.setdefault("matchPolicy", "Equivalent")
    hook.setdefault("namespaceSelector", {})
    hook.setdefault("objectSelector", {})
    hook.setdefault("timeoutSeconds", 10)
    if mutating:
        hook.setdefault("reinvocationPolicy", "Never")
    if hook["failurePolicy"] not in ("Fail", "Ignore"):
        errors.append(
            FieldError(
                "FieldValueNotSupported",
                f"{path}.failurePolicy",
                'supported values: "Fail", "Ignore"',
                hook["failurePolicy"],
            )
        )
    timeout = hook["timeoutSeconds"]
    if not isinstance(timeout, int) or not 1 <= timeout <= 30:
        errors.append(
            FieldError(
                "FieldValueInvalid",
                f"{path}.timeoutSeconds",
                "the timeout value must be between 1 and 30 seconds",
                timeout,
            )
        )
    if hook.get("sideEffects") not in _SIDE_EFFECTS:
        if hook.get("sideEffects"):
            errors.append(
                FieldError(
                    "FieldValueNotSupported",
                    f"{path}.sideEffects",
                    'supported values: "None", "NoneOnDryRun"',
                    hook["sideEffects"],
                )
            )
        else:
            errors.append(
                FieldError("FieldValueRequired", f"{path}.sideEffects", "must specify one of None, NoneOnDryRun")
            )
    if not hook.get("admissionReviewVersions"):
        errors.append(
            FieldError("FieldValueRequired", f"{path}.admissionReviewVersions", "must specify one of v1, v1beta1")
        )
    for rule in hook.get("rules") or []:
        if isinstance(rule, dict):
            rule.setdefault("scope", "*")
    config = hook.get("clientConfig")
    config = config if isinstance(config, dict) else {}
    url, service = config.get("url"), config.get("service")
    if bool(url) == bool(service):
        errors.append(
            FieldError("FieldValueRequired", f"{path}.clientConfig", "exactly one of url or service is required")
        )
    elif url and not str(url).startswith("https://"):
        errors.append(
            FieldError("FieldValueInvalid", f"{path}.clientConfig.url", "'https' is the only allowed URL scheme", url)
        )
    elif isinstance(service, dict):
        service.setdefault("port", 443)
    return errors


def _webhooks(obj: Json, mutating: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, hook in enumerate(obj.get("webhooks") or []):
        if isinstance(hook, dict):
            errors += _webhook(hook, f"webhooks[{i}]", mutating)
    return errors


def mutating_webhooks(obj: Json, old: Json | None) -> list[FieldError]:
    return _webhooks(obj, mutating=True)


def validating_webhooks(obj: Json, old: Json | None) -> list[FieldError]:
    return _webhooks(obj, mutating=False)
