"""Authentication: who sent a request, from a static token table or a ServiceAccount token the emulator issued.

`AuthConfig` (pydantic) turns the mode on; `load_token_file()` reads kube-apiserver's `--token-auth-file` CSV.
`Authenticator` answers bearer tokens with a `UserInfo` and issues ServiceAccount tokens (TokenRequest) as
HMAC-signed JWTs bound to the ServiceAccount's uid, so deleting the ServiceAccount invalidates them. Without a
config any other token is taken as the user name (the emulator's old behaviour).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Json = dict[str, Any]
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
MASTERS = "system:masters"
SA_PREFIX = "system:serviceaccount:"
SA_GROUP = "system:serviceaccounts"
ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_TOKEN_SECONDS = 3600
MIN_TOKEN_SECONDS = 600


class TokenEntry(BaseModel):
    """One line of a static token file: the token and the identity it stands for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: str = Field(min_length=1)
    user: str = Field(min_length=1)
    uid: str = ""
    groups: tuple[str, ...] = ()


class AuthConfig(BaseModel):
    """Authentication and RBAC for the emulator; without it every bearer token is taken as a user name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: tuple[TokenEntry, ...] = ()

    @classmethod
    def from_token_file(cls, path: str | Path) -> AuthConfig:
        return cls(tokens=tuple(load_token_file(path)))


def load_token_file(path: str | Path) -> list[TokenEntry]:
    """Parse `token,user,uid,"group1,group2"` lines (kube-apiserver's static token file); blank lines skipped."""
    entries = []
    with Path(path).open(newline="") as f:
        for row in csv.reader(f):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if len(row) < 3:
                raise ValueError(f"{path}: a token line needs at least token,user,uid: {len(row)} fields found")
            groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
            entries.append(TokenEntry(token=row[0].strip(), user=row[1].strip(), uid=row[2].strip(), groups=groups))
    return entries


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity as authorisers and webhooks see it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> Json:
        body: Json = {"username": self.username}
        if self.uid:
            body["uid"] = self.uid
        if self.groups:
            body["groups"] = list(self.groups)
        if self.extra:
            body["extra"] = {k: list(v) for k, v in self.extra.items()}
        return body


def with_defaults(user: UserInfo) -> UserInfo:
    """Add the groups the real authenticators add: ServiceAccount groups and `system:authenticated`."""
    groups = list(user.groups)
    if user.username.startswith(SA_PREFIX):
        namespace = user.username[len(SA_PREFIX) :].split(":", 1)[0]
        groups += [g for g in (SA_GROUP, f"{SA_GROUP}:{namespace}") if g not in groups]
    if user.username != ANONYMOUS and AUTHENTICATED not in groups:
        groups.append(AUTHENTICATED)
    return UserInfo(user.username, user.uid, tuple(groups), user.extra)


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    return with_defaults(UserInfo(f"{SA_PREFIX}{namespace}:{name}", uid))


def split_service_account(username: str) -> tuple[str, str] | None:
    """(namespace, name) of `system:serviceaccount:<ns>:<name>`, else None."""
    if not username.startswith(SA_PREFIX):
        return None
    namespace, _, name = username[len(SA_PREFIX) :].partition(":")
    return (namespace, name) if namespace and name else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Authenticated:
    """The result of checking a token: the user and the audiences the token is good for."""

    user: UserInfo
    audiences: tuple[str, ...]


class Authenticator:
    """Static tokens plus ServiceAccount tokens; `lookup_sa(ns, name)` returns the live SA object or None."""

    def __init__(self, config: AuthConfig | None, lookup_sa: Callable[[str, str], Json | None]) -> None:
        self.config = config
        self.lookup_sa = lookup_sa
        self._static = {e.token: e for e in config.tokens} if config else {}
        self._key = secrets.token_bytes(32)

    @property
    def enforcing(self) -> bool:
        return self.config is not None

    def authenticate(self, token: str, audiences: tuple[str, ...] = ()) -> Authenticated | None:
        """The identity behind a bearer token, or None when the token is unknown, expired or revoked."""
        if not self.enforcing:
            issued = self._service_account(token, audiences)
            if issued is not None or not token:
                return issued
            return Authenticated(with_defaults(UserInfo(token)), (ISSUER,))
        entry = self._static.get(token)
        if entry is not None:
            if audiences and ISSUER not in audiences:
                return None
            return Authenticated(with_defaults(UserInfo(entry.user, entry.uid, entry.groups)), (ISSUER,))
        return self._service_account(token, audiences)

    def issue(self, namespace: str, name: str, uid: str, audiences: list[str], seconds: int) -> tuple[str, int]:
        """A signed token for a ServiceAccount; returns (token, expiry as a Unix time)."""
        now = int(time.time())
        expiry = now + seconds
        claims = {
            "aud": audiences or [ISSUER],
            "exp": expiry,
            "iat": now,
            "nbf": now,
            "iss": ISSUER,
            "jti": secrets.token_hex(16),
            "sub": f"{SA_PREFIX}{namespace}:{name}",
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
        }
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64(hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        return f"{header}.{payload}.{signature}", expiry

    def _service_account(self, token: str, audiences: tuple[str, ...]) -> Authenticated | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        expected = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(_unb64(parts[2]), expected):
                return None
            claims = json.loads(_unb64(parts[1]))
        except ValueError:
            return None
        if int(claims.get("exp", 0)) <= time.time():
            return None
        token_audiences = tuple(claims.get("aud") or ())
        granted = tuple(a for a in audiences if a in token_audiences) if audiences else token_audiences
        if not granted:
            return None
        bound = claims.get("kubernetes.io") or {}
        namespace, sa = bound.get("namespace", ""), (bound.get("serviceaccount") or {})
        live = self.lookup_sa(namespace, sa.get("name", ""))
        if live is None or live["metadata"].get("uid") != sa.get("uid"):
            return None
        return Authenticated(service_account_user(namespace, sa["name"], sa["uid"]), granted)
