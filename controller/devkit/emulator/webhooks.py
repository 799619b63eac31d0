"""Admission webhooks: which configured webhooks a request matches, the AdmissionReview sent, and the call.

Matching follows admissionregistration.k8s.io/v1 (rules with operations, groups, versions, resources incl.
`x/status`, `*/*`, scope; `namespaceSelector`; `objectSelector`). `WebhookCaller` POSTs AdmissionReview v1 over
TLS verified against the `caBundle`; a `service` reference reaches a loopback port from `service_ports`.
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from .authn import UserInfo
from .resourcetypes import WEBHOOK_GROUP, ResourceType
from .selectors import from_label_selector
from .store import ObjectStore

Json = dict[str, Any]
MUTATING = (WEBHOOK_GROUP, "mutatingwebhookconfigurations")
VALIDATING = (WEBHOOK_GROUP, "validatingwebhookconfigurations")
NAMESPACES = ("", "namespaces")
ServicePorts = dict[tuple[str, str], int]
_OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


@dataclass(frozen=True)
class AdmissionAttributes:
    """One write as admission sees it."""

    operation: str
    rt: ResourceType
    namespace: str
    name: str
    subresource: str
    user: UserInfo
    obj: Json | None
    old: Json | None
    dry_run: bool
    options: Json

    def review(self, uid: str) -> Json:
        """The AdmissionReview v1 request for this write."""
        rt = self.rt
        kind = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        resource = {"group": rt.group, "version": rt.version, "resource": rt.plural}
        request: Json = {"uid": uid, "kind": kind, "resource": resource}
        if self.subresource:
            request["subResource"] = self.subresource
        request.update(requestKind=kind, requestResource=resource)
        if self.subresource:
            request["requestSubResource"] = self.subresource
        if self.name:
            request["name"] = self.name
        if self.namespace:
            request["namespace"] = self.namespace
        options = {"kind": _OPTIONS_KIND.get(self.operation, "CreateOptions"), "apiVersion": "meta.k8s.io/v1"}
        request.update(
            operation=self.operation,
            userInfo=self.user.to_json(),
            object=self.obj,
            oldObject=self.old,
            dryRun=self.dry_run,
            options={**options, **self.options},
        )
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


@dataclass(frozen=True)
class Hook:
    """One webhook of a configuration; `spec` is its entry in `webhooks` (defaults applied on write)."""

    name: str
    spec: Json
    mutating: bool

    @property
    def ignores_failures(self) -> bool:
        return self.spec.get("failurePolicy") == "Ignore"


def _listed(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and ("*" in values or wanted in values)


def _resource_listed(resources: Any, plural: str, subresource: str) -> bool:
    for item in resources if isinstance(resources, list) else []:
        base, _, sub = str(item).partition("/")
        if base not in ("*", plural):
            continue
        if (not sub and not subresource) or sub == "*" or (sub and sub == subresource):
            return True
    return False


def rule_matches(rule: Any, attrs: AdmissionAttributes) -> bool:
    if not isinstance(rule, dict):
        return False
    rt = attrs.rt
    scope = rule.get("scope") or "*"
    if (scope == "Cluster" and rt.namespaced) or (scope == "Namespaced" and not rt.namespaced):
        return False
    return (
        _listed(rule.get("operations"), attrs.operation)
        and _listed(rule.get("apiGroups"), rt.group)
        and _listed(rule.get("apiVersions"), rt.version)
        and _resource_listed(rule.get("resources"), rt.plural, attrs.subresource)
    )


def _labelled(obj: Json | None) -> Json:
    return {"metadata": {"labels": ((obj or {}).get("metadata") or {}).get("labels") or {}}}


def hooks_for(store: ObjectStore, attrs: AdmissionAttributes, mutating: bool) -> list[Hook]:
    """Matching webhooks in the order kube-apiserver calls them (configuration name, then list order)."""
    found = []
    for config in store.items(MUTATING if mutating else VALIDATING, ""):
        for spec in config.get("webhooks") or []:
            if isinstance(spec, dict) and any(rule_matches(r, attrs) for r in spec.get("rules") or []):
                found.append(Hook(str(spec.get("name", "")), spec, mutating))
    return found


def selectors_match(store: ObjectStore, hook: Hook, attrs: AdmissionAttributes) -> bool:
    """`namespaceSelector` (the namespace's labels; a Namespace's own) and `objectSelector` (object or old)."""
    namespace_selector = from_label_selector(hook.spec.get("namespaceSelector"))
    if namespace_selector:
        if attrs.rt.key == NAMESPACES:
            if not namespace_selector.matches(_labelled(attrs.obj or attrs.old)):
                return False
        elif attrs.rt.namespaced:
            namespace = store.get(NAMESPACES, "", attrs.namespace)
            if not namespace_selector.matches(_labelled(namespace)):
                return False
    object_selector = from_label_selector(hook.spec.get("objectSelector"))
    if not object_selector:
        return True
    candidates = [o for o in (attrs.obj, attrs.old) if o is not None]
    return any(object_selector.matches(_labelled(o)) for o in candidates)


class CallFailed(Exception):
    """The webhook could not be asked or gave no usable answer (`failurePolicy` decides what follows)."""


def _unreachable(detail: str) -> CallFailed:
    return CallFailed(f"failed to call webhook: {detail}")


def _ssl_context(ca_bundle: Any) -> ssl.SSLContext:
    if not ca_bundle:
        return ssl.create_default_context()
    try:
        pem = base64.b64decode(str(ca_bundle)).decode()
        return ssl.create_default_context(cadata=pem)
    except (ValueError, binascii.Error, ssl.SSLError) as e:
        raise _unreachable(f"could not use the caBundle: {e}") from e


class WebhookCaller:
    """Posts AdmissionReviews; `service_ports` maps (namespace, service name) to a loopback port."""

    def __init__(self, service_ports: ServicePorts | None = None) -> None:
        self.service_ports = dict(service_ports or {})

    def _target(self, config: Json, timeout_seconds: int) -> tuple[str, str, str | None]:
        """(URL as the API server names it, URL to connect to, TLS server name)."""
        suffix = f"timeout={timeout_seconds}s"
        if config.get("url"):
            url = str(config["url"])
            shown = f"{url}{'&' if '?' in url else '?'}{suffix}"
            return shown, shown, None
        service = config.get("service") or {}
        namespace, name = str(service.get("namespace", "")), str(service.get("name", ""))
        path = str(service.get("path") or "/")
        host = f"{name}.{namespace}.svc"
        shown = f"https://{host}:{service.get('port', 443)}{path}?{suffix}"
        port = self.service_ports.get((namespace, name))
        if port is None:
            raise _unreachable(f'Post "{shown}": service "{name}" not found')
        return shown, f"https://127.0.0.1:{port}{path}?{suffix}", host

    async def call(self, hook: Hook, review: Json) -> Json:
        """The webhook's `response`, checked against the request uid; raises `CallFailed`."""
        config = hook.spec.get("clientConfig") or {}
        timeout_seconds = int(hook.spec.get("timeoutSeconds") or 10)
        shown, url, server_name = self._target(config, timeout_seconds)
        context = _ssl_context(config.get("caBundle"))
        timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, json=review, ssl=context, server_hostname=server_name) as response,
            ):
                if response.status != 200:
                    text = (await response.text())[:200]
                    raise _unreachable(
                        f'Post "{shown}": the server responded with the status code {response.status}: {text}'
                    )
                body = await response.json(content_type=None)
        except TimeoutError as e:
            raise _unreachable(f'Post "{shown}": context deadline exceeded') from e
        except aiohttp.ClientConnectorCertificateError as e:
            raise _unreachable(f'Post "{shown}": tls: failed to verify certificate: {_x509(e)}') from e
        except aiohttp.ClientConnectorError as e:
            raise _unreachable(f'Post "{shown}": dial tcp {e.host}:{e.port}: connect: connection refused') from e
        except (aiohttp.ClientError, ValueError) as e:
            raise _unreachable(f'Post "{shown}": {e}') from e
        return _response(body, review["request"]["uid"])


def _x509(error: aiohttp.ClientConnectorCertificateError) -> str:
    cert_error = error.certificate_error
    code = getattr(cert_error, "verify_code", None)
    if code in (7, 18, 19, 20, 21):
        return "x509: certificate signed by unknown authority"
    if code == 62:
        return f"x509: certificate is not valid for {error.host}"
    return f"x509: {getattr(cert_error, 'verify_message', cert_error)}"


def _response(body: Any, uid: str) -> Json:
    if not isinstance(body, dict) or not isinstance(body.get("response"), dict):
        raise CallFailed("received invalid webhook response: webhook response was absent")
    response: Json = body["response"]
    if response.get("uid") != uid:
        raise CallFailed(
            f'received invalid webhook response: expected response.uid="{uid}", got "{response.get("uid", "")}"'
        )
    return response


def decode_patch(response: Json) -> list[Json] | None:
    """The JSONPatch of a mutating webhook's response, or None when it sent none."""
    patch = response.get("patch")
    if not patch:
        return None
    if response.get("patchType") != "JSONPatch":
        raise CallFailed(f'received invalid webhook response: unsupported patch type "{response.get("patchType")}"')
    try:
        operations = json.loads(base64.b64decode(str(patch)))
    except (ValueError, binascii.Error) as e:
        raise CallFailed(f"received invalid webhook response: {e}") from e
    if not isinstance(operations, list):
        raise CallFailed("received invalid webhook response: the patch is not a JSON array")
    return operations


def new_uid() -> str:
    return str(uuid.uuid4())
