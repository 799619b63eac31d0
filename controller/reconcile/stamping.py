"""The admission decisions of Ringpilot's webhooks: whose name goes on an object, and what is refused.

Pure. `stamp` is the mutating half: on create it replaces `spec.user` / `spec.requestedBy` with the
authenticated user (unless a principal of the policy's `identity` section vouches for the user), gives
every new ChangeRequest decision `approver` = the requester and `decidedAt` = server time, and keeps
the created-by annotation. `refusal` is the validating half; every reason names the field. It refuses,
among others, a change of a ChangeRequest's controller-owned spec by anyone but the controller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.api.identity import SYSTEM_USER
from controller.api.labels import (
    CORRELATION_LABEL,
    CREATED_BY_ANNOTATION,
    RISK_DECLARED_BY_ANNOTATION,
    RISK_INPUTS_ANNOTATION,
)
from controller.api.policy import Permission, Policy

Json = dict[str, Any]
CREATE, UPDATE = "CREATE", "UPDATE"
#: The field each kind names its user in, and whether the webhook stamps it on create.
USER_FIELDS: dict[str, tuple[str, bool]] = {
    "Conversation": ("user", True),
    "DeploymentTask": ("requestedBy", True),
    "Remediation": ("requestedBy", True),
    "ChangeRequest": ("submittedBy", False),
}
#: Tools of the chat agent whose confirmation lets the worker create an object for the asking user.
CREATING_TOOLS = frozenset({"deploy", "rollback_deployment", "execute_remediation", "restart_service", "submit_cab"})


@dataclass(frozen=True)
class Requester:
    """Who sent the request, as the API server authenticated them."""

    username: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Review:
    """One admission request for a Ringpilot object (`old` is None on create)."""

    kind: str
    operation: str
    requester: Requester
    new: Json
    old: Json | None = None
    name: str = ""


@dataclass
class Stamp:
    """What the mutating webhook changes: a merge patch of `spec` and annotations, and warnings for the client."""

    spec: Json = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.spec or self.annotations)


def _spec(body: Json | None) -> Json:
    spec = (body or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def _annotations(body: Json | None) -> dict[str, str]:
    annotations = ((body or {}).get("metadata") or {}).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def _decisions(body: Json | None) -> list[Json]:
    decisions = _spec(body).get("decisions")
    return [d for d in decisions if isinstance(d, dict)] if isinstance(decisions, list) else []


def created_by(username: str) -> str:
    """The created-by annotation's value for `username`."""
    return f"kubernetes:{username}"


def stamp(review: Review, policy: Policy, now: datetime) -> Stamp:
    """What to write onto the object before it is stored (see the module docstring)."""
    out = Stamp()
    who = review.requester.username
    vouched = policy.identity.vouches(who)
    if review.operation == CREATE:
        out.annotations[CREATED_BY_ANNOTATION] = created_by(who)
        field_name, stamped = USER_FIELDS.get(review.kind, ("", False))
        named = _spec(review.new).get(field_name)
        if stamped and not vouched and named != who:
            out.spec[field_name] = who
            if named:
                out.warnings.append(f"spec.{field_name}: {named!r} replaced by {who!r}, the authenticated user")
    else:
        kept = _annotations(review.old).get(CREATED_BY_ANNOTATION)
        if kept is not None and _annotations(review.new).get(CREATED_BY_ANNOTATION) != kept:
            out.annotations[CREATED_BY_ANNOTATION] = kept
            out.warnings.append(f"metadata.annotations[{CREATED_BY_ANNOTATION}] is kept as {kept!r}")
    if review.kind == "DeploymentTask":
        _stamp_risk_declarer(review, out)
    if review.kind == "ChangeRequest":
        decisions = _decisions(review.new)
        old = _decisions(review.old)
        settled = len(old)
        stamped_decisions = [dict(d) for d in decisions]
        for index in range(min(settled, len(decisions))):  # a re-apply without the stamped time changes nothing
            if _without_time(decisions[index]) == _without_time(old[index]):
                stamped_decisions[index] = old[index]
        for index in range(settled, len(decisions)):
            record = stamped_decisions[index]
            if not vouched and record.get("approver") != who:
                if record.get("approver"):
                    out.warnings.append(
                        f"spec.decisions[{index}].approver: {record['approver']!r} replaced by {who!r}, "
                        "the authenticated user"
                    )
                record["approver"] = who
            record["decidedAt"] = now.isoformat().replace("+00:00", "Z")
        if stamped_decisions != decisions:
            out.spec["decisions"] = stamped_decisions
    return out


def _stamp_risk_declarer(review: Review, out: Stamp) -> None:
    """Whoever writes a task's risk-inputs annotation is recorded as its declarer; nobody else names one."""
    new, old = _annotations(review.new), _annotations(review.old)
    if new.get(RISK_INPUTS_ANNOTATION) is not None and new.get(RISK_INPUTS_ANNOTATION) != old.get(
        RISK_INPUTS_ANNOTATION
    ):
        out.annotations[RISK_DECLARED_BY_ANNOTATION] = review.requester.username
    elif new.get(RISK_DECLARED_BY_ANNOTATION) != old.get(RISK_DECLARED_BY_ANNOTATION):
        out.annotations[RISK_DECLARED_BY_ANNOTATION] = old.get(RISK_DECLARED_BY_ANNOTATION, "")


def _without_time(decision: Json) -> Json:
    return {key: value for key, value in decision.items() if key != "decidedAt"}


def _named_users(review: Review) -> Iterable[tuple[str, Any]]:
    """(field path, user) of every user the request names anew."""
    spec, old = _spec(review.new), _spec(review.old)
    field_name, _ = USER_FIELDS.get(review.kind, ("", False))
    if field_name and spec.get(field_name) is not None and spec.get(field_name) != old.get(field_name):
        yield f"spec.{field_name}", spec.get(field_name)
    settled = len(_decisions(review.old))
    for index, record in enumerate(_decisions(review.new)[settled:], start=settled):
        yield f"spec.decisions[{index}].approver", record.get("approver")


def _immutable(review: Review) -> str | None:
    if review.old is None:
        return None
    field_name, _ = USER_FIELDS.get(review.kind, ("", False))
    before, after = _spec(review.old).get(field_name), _spec(review.new).get(field_name)
    if field_name and before is not None and before != after:
        return f"spec.{field_name} is immutable: it stays {before!r}"
    return None


def _controller_owned(review: Review, policy: Policy) -> str | None:
    """A ChangeRequest's spec is the controller's but for `decisions` (docs/domain.md §4.1)."""
    controller = policy.identity.controller
    if review.kind != "ChangeRequest" or review.old is None or controller in (None, review.requester.username):
        return None
    old, new = _spec(review.old), _spec(review.new)
    for key in sorted((set(old) | set(new)) - {"decisions"}):
        if old.get(key) != new.get(key):
            return f"spec.{key} is owned by the controller: only spec.decisions may be changed"
    return None


def _messages_appended(review: Review) -> str | None:
    if review.kind != "Conversation" or review.old is None:
        return None
    old = [m for m in _spec(review.old).get("messages") or [] if isinstance(m, dict)]
    new = [m for m in _spec(review.new).get("messages") or [] if isinstance(m, dict)]
    new_ids = {m.get("id") for m in new}
    for index, message in enumerate(old):
        ident = message.get("id")
        if ident not in new_ids:
            return f"spec.messages is append-only: message {ident!r} may not be deleted"
        if index >= len(new) or new[index].get("id") != ident:
            return f"spec.messages is append-only: message {ident!r} may not be moved"
        if new[index] != message:
            return f"spec.messages is append-only: message {ident!r} may not be edited"
    return None


def _decisions_appended(review: Review, policy: Policy) -> str | None:
    if review.kind != "ChangeRequest":
        return None
    old, new = _decisions(review.old), _decisions(review.new)
    for index, record in enumerate(old):
        if index >= len(new):
            return f"spec.decisions is append-only: the decision by {record.get('approver')!r} may not be removed"
        if new[index] != record:
            return f"spec.decisions[{index}] is append-only: the decision by {record.get('approver')!r} may not change"
    who = review.requester
    submitter = _spec(review.new).get("submittedBy")
    seen = {d.get("approver") for d in old}
    for index, record in enumerate(new[len(old) :], start=len(old)):
        where, approver = f"spec.decisions[{index}].approver", record.get("approver")
        if not isinstance(approver, str) or not approver:
            return f"{where} is required"
        if approver != who.username and not policy.identity.vouches(who.username):
            return f"{where}: {approver!r} is not {who.username!r}, who sent the decision"
        if approver == submitter:
            return f"{where}: {approver!r} submitted this change and may not decide on it"
        groups = who.groups if approver == who.username else ()
        if Permission.APPROVE not in policy.permissions_for(approver, groups):
            role = policy.role_for(approver, groups)
            return f"{where}: {approver!r} holds role {role.value}, not cab-approver"
        if approver in seen:
            return f"{where}: {approver!r} has already decided"
        seen.add(approver)
    return None


def refusal(review: Review, policy: Policy, *, conversation_vouches: bool = False) -> str | None:
    """Why the request is refused (naming the field), or None to let it through.

    `conversation_vouches` says whether a Conversation of the named user has an action pending for the
    object (`needs_conversation` says when the caller must look); only then may the worker name a user.
    """
    checks = (
        _immutable(review),
        _controller_owned(review, policy),
        _messages_appended(review),
        _decisions_appended(review, policy),
    )
    for check in checks:
        if check:
            return check
    who = review.requester.username
    for where, user in _named_users(review):
        if user == SYSTEM_USER and who != policy.identity.controller:
            return f"{where}: {SYSTEM_USER} may be named only by the controller"
    if needs_conversation(review, policy) and not conversation_vouches:
        where, user = next(iter(_named_users(review)), ("spec", who))
        return (
            f"{where}: the worker may name {user!r} only for an action pending in a Conversation of {user!r}, "
            "and there is none"
        )
    return None


def needs_conversation(review: Review, policy: Policy) -> bool:
    """True when the worker names a user other than itself: a Conversation must vouch for it."""
    worker = policy.identity.worker
    if worker is None or review.requester.username != worker:
        return False
    return any(user not in (worker, None) for _, user in _named_users(review))


def correlation_of(body: Json) -> str | None:
    """The correlation ID an object carries (label first, then spec, then status)."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    found = (
        labels.get(CORRELATION_LABEL)
        or _spec(body).get("correlationId")
        or (body.get("status") or {}).get("correlationId")
    )
    return str(found) if found else None


def vouching_conversation(review: Review, conversations: Iterable[Json]) -> Json | None:
    """The Conversation that lets the worker write this request, if any.

    For a create: a Conversation owned by the named user, with the object's correlation ID and a pending
    action of a creating tool. For a decision: one owned by the approver whose pending `decide_change`
    names this ChangeRequest.
    """
    users = {user for _, user in _named_users(review)}
    if len(users) != 1:
        return None
    (user,) = users
    correlation = correlation_of(review.new)
    for conversation in conversations:
        pending = (conversation.get("status") or {}).get("pending") or {}
        if _spec(conversation).get("user") != user or not pending:
            continue
        if review.kind == "ChangeRequest":
            arguments = pending.get("arguments") or {}
            if pending.get("tool") == "decide_change" and arguments.get("change_request") == review.name:
                return conversation
        elif pending.get("tool") in CREATING_TOOLS and correlation and correlation_of(conversation) == correlation:
            return conversation
    return None
