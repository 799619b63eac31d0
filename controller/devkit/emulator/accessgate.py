"""The gate every request passes: authentication, impersonation, then authorisation.

Without an `AuthConfig` the gate keeps the emulator's old manners: the bearer token is the user name, nobody is
refused, impersonation headers are honoured unchecked. With one, unknown tokens get 401, impersonation needs the
`impersonate` verb, and RBAC decides (health paths are open to anonymous callers, as kube-apiserver's defaults).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from .apierrors import ApiError
from .authn import ANONYMOUS, UNAUTHENTICATED, AuthConfig, Authenticator, UserInfo, split_service_account, with_defaults
from .rbac import RbacAuthorizer
from .requestinfo import Attributes, forbidden, request_attributes, unauthorized
from .store import ObjectStore

Json = dict[str, Any]
logger = logging.getLogger(__name__)
SERVICE_ACCOUNTS = ("", "serviceaccounts")
_ANONYMOUS_PATHS = ("/healthz", "/livez", "/readyz")
_EXTRA_PREFIX = "impersonate-extra-"


def bearer_token(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    return auth.split(" ", 1)[1].strip() if auth.lower().startswith("bearer ") else ""


class AccessGate:
    """Decides who a request is and whether it may go on."""

    def __init__(self, config: AuthConfig | None, store: ObjectStore) -> None:
        self.store = store
        self.authenticator = Authenticator(config, lambda ns, name: store.get(SERVICE_ACCOUNTS, ns, name))
        self.rbac = RbacAuthorizer(store)

    @property
    def enforcing(self) -> bool:
        return self.authenticator.enforcing

    def allows(self, attrs: Attributes) -> bool:
        return not self.enforcing or self.rbac.allows(attrs)

    def admit_request(self, request: web.Request) -> UserInfo:
        """The user the request runs as; raises 401/403 `ApiError` when it may not run."""
        user = self._authenticate(request)
        user = self._impersonate(user, request)
        attrs = request_attributes(user, request)
        if not self.allows(attrs):
            logger.info("Refused %s %s to %s", attrs.verb, request.path, user.username)
            raise forbidden(attrs)
        return user

    def _authenticate(self, request: web.Request) -> UserInfo:
        token = bearer_token(request)
        found = self.authenticator.authenticate(token) if token else None
        if found is not None:
            return found.user
        if self.enforcing and (token or request.path.rstrip("/") not in _ANONYMOUS_PATHS):
            raise unauthorized()
        return UserInfo(ANONYMOUS, groups=(UNAUTHENTICATED,))

    def _impersonate(self, user: UserInfo, request: web.Request) -> UserInfo:
        headers = request.headers
        name = headers.get("Impersonate-User", "")
        groups = [g for g in headers.getall("Impersonate-Group", []) if g]
        uid = headers.get("Impersonate-Uid", "")
        extra: dict[str, list[str]] = {}
        for key in headers:
            if key.lower().startswith(_EXTRA_PREFIX):
                extra.setdefault(key[len(_EXTRA_PREFIX) :].lower(), []).extend(headers.getall(key))
        if not name:
            if groups or uid or extra:
                raise ApiError.bad_request(
                    "requested impersonation of groups, uid or extra without impersonating a user"
                )
            return user
        checks = [self._user_check(user, name)]
        checks += [Attributes(user, "impersonate", True, resource="groups", name=g) for g in groups]
        if uid:
            checks.append(
                Attributes(user, "impersonate", True, api_group="authentication.k8s.io", resource="uids", name=uid)
            )
        for key, values in extra.items():
            checks += [
                Attributes(
                    user,
                    "impersonate",
                    True,
                    api_group="authentication.k8s.io",
                    resource="userextras",
                    subresource=key,
                    name=value,
                )
                for value in values
            ]
        for attrs in checks:
            if not self.allows(attrs):
                logger.info("Refused impersonation of %s by %s", attrs.name, user.username)
                raise forbidden(attrs)
        if name == ANONYMOUS:
            return UserInfo(name, uid, tuple(groups) or (UNAUTHENTICATED,), extra)
        return with_defaults(UserInfo(name, uid, tuple(groups), extra))

    @staticmethod
    def _user_check(user: UserInfo, name: str) -> Attributes:
        service_account = split_service_account(name)
        if service_account is not None:
            namespace, sa = service_account
            return Attributes(user, "impersonate", True, resource="serviceaccounts", namespace=namespace, name=sa)
        return Attributes(user, "impersonate", True, resource="users", name=name)
