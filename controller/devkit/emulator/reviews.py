"""The create-only review kinds and the TokenRequest subresource: questions answered, nothing stored.

TokenReview and SelfSubjectReview (authentication.k8s.io/v1), SubjectAccessReview, SelfSubjectAccessReview,
LocalSubjectAccessReview and SelfSubjectRulesReview (authorization.k8s.io/v1), and
`POST .../serviceaccounts/<name>/token` (what `kubectl create token` sends). `endpoints.py` routes them here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .accessgate import SERVICE_ACCOUNTS, AccessGate
from .apierrors import ApiError, FieldError
from .authn import DEFAULT_TOKEN_SECONDS, ISSUER, MASTERS, MIN_TOKEN_SECONDS, UserInfo
from .objectmeta import now_rfc3339
from .requestinfo import Attributes
from .resourcetypes import AUTHN_GROUP, ResourceType

Json = dict[str, Any]


def _answer(rt: ResourceType, body: Json, status: Json, namespace: str | None = None) -> Json:
    meta: Json = {"creationTimestamp": None}
    if namespace:
        meta["namespace"] = namespace
    return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta, "spec": body.get("spec") or {}, **status}


def _spec_user(spec: Json) -> UserInfo:
    extra = {str(k): [str(x) for x in v] for k, v in (spec.get("extra") or {}).items()}
    return UserInfo(str(spec.get("user") or ""), str(spec.get("uid") or ""), tuple(spec.get("groups") or ()), extra)


def _attributes(user: UserInfo, spec: Json, namespace: str | None) -> Attributes:
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if isinstance(resource, dict):
        return Attributes(
            user,
            str(resource.get("verb") or ""),
            True,
            api_group=str(resource.get("group") or ""),
            api_version=str(resource.get("version") or ""),
            resource=str(resource.get("resource") or ""),
            subresource=str(resource.get("subresource") or ""),
            namespace=namespace if namespace is not None else str(resource.get("namespace") or ""),
            name=str(resource.get("name") or ""),
        )
    if isinstance(non_resource, dict):
        return Attributes(user, str(non_resource.get("verb") or ""), False, path=str(non_resource.get("path") or ""))
    raise ApiError.invalid(
        "authorization.k8s.io",
        "SubjectAccessReview",
        "",
        [
            FieldError(
                "FieldValueRequired",
                "spec.resourceAttributes",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        ],
    )


def _rules_review(gate: AccessGate, user: UserInfo, namespace: str) -> Json:
    if not gate.enforcing or MASTERS in user.groups:
        resource_rules = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
        non_resource_rules = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
    else:
        rules = gate.rbac.rules_for(user, namespace)
        keys = ("verbs", "apiGroups", "resources", "resourceNames")
        resource_rules = [{k: r[k] for k in keys if r.get(k)} for r in rules if not r.get("nonResourceURLs")]
        non_resource_rules = [
            {k: r[k] for k in ("verbs", "nonResourceURLs")} for r in rules if r.get("nonResourceURLs")
        ]
    return {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": False}


def answer_review(gate: AccessGate, rt: ResourceType, namespace: str | None, body: Any, user: UserInfo) -> Json:
    """The filled-in review object for a POST of one of the review kinds."""
    if not isinstance(body, dict):
        raise ApiError.bad_request(f"the body of the request must be a {rt.kind} object")
    spec = body.get("spec") or {}
    if rt.plural == "tokenreviews":
        audiences = tuple(spec.get("audiences") or ())
        found = gate.authenticator.authenticate(str(spec.get("token") or ""), audiences)
        if found is None:
            return _answer(rt, body, {"status": {"user": {}, "error": "invalid bearer token"}})
        status = {"authenticated": True, "user": found.user.to_json(), "audiences": list(found.audiences)}
        return _answer(rt, body, {"status": status})
    if rt.plural == "selfsubjectreviews":
        return _answer(rt, body, {"status": {"userInfo": user.to_json()}})
    if rt.plural == "selfsubjectrulesreviews":
        return _answer(rt, body, {"status": _rules_review(gate, user, str(spec.get("namespace") or ""))})
    asking = user if rt.plural == "selfsubjectaccessreviews" else _spec_user(spec)
    if rt.plural == "localsubjectaccessreviews":
        given = (spec.get("resourceAttributes") or {}).get("namespace")
        if given and given != namespace:
            raise ApiError.bad_request(f"spec.resourceAttributes.namespace must match namespace: {namespace}")
    attrs = _attributes(asking, spec, namespace if rt.namespaced else None)
    allowed = gate.allows(attrs)
    return _answer(rt, body, {"status": {"allowed": allowed}}, namespace if rt.namespaced else None)


def request_token(gate: AccessGate, namespace: str, name: str, body: Any) -> Json:
    """Issue a ServiceAccount token (TokenRequest); the ServiceAccount must exist."""
    account = gate.store.get(SERVICE_ACCOUNTS, namespace, name)
    if account is None:
        raise ApiError.not_found("", "serviceaccounts", name)
    spec = dict((body or {}).get("spec") or {}) if isinstance(body, dict) else {}
    seconds = spec.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS
    if not isinstance(seconds, int) or seconds < MIN_TOKEN_SECONDS:
        raise ApiError.invalid(
            AUTHN_GROUP,
            "TokenRequest",
            name,
            [
                FieldError(
                    "FieldValueInvalid",
                    "spec.expirationSeconds",
                    "may not specify a duration less than 10 minutes",
                    seconds,
                )
            ],
        )
    audiences = [str(a) for a in spec.get("audiences") or []] or [ISSUER]
    token, expiry = gate.authenticator.issue(namespace, name, account["metadata"].get("uid", ""), audiences, seconds)
    spec.update(audiences=audiences, expirationSeconds=seconds)
    spec.setdefault("boundObjectRef", None)
    return {
        "kind": "TokenRequest",
        "apiVersion": f"{AUTHN_GROUP}/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": now_rfc3339()},
        "spec": spec,
        "status": {
            "token": token,
            "expirationTimestamp": datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }
