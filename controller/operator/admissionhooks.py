"""Ringpilot's admission webhooks, served by the controller with Kopf's webhook server.

`register_admission` adds the mutating handlers (`stamp-conversation`, `stamp-requests`,
`stamp-decisions`) and the validating ones (`guard-conversation`, `guard-requests`, `guard-decisions`),
the webhook server (HTTPS, the certificate from the settings) and a `webhooks` probe for /healthz.
Each handler id is its URL path. The decisions are in `controller/reconcile/stamping.py`; the
webhook configurations are not managed here (the dev stack or the chart creates them).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import kopf

from controller.api.group import GROUP, VERSION
from controller.api.kinds import CONVERSATION
from controller.kube.client import CREDENTIAL_ERRORS, CustomObjects, KubeError, api_client_from_environment
from controller.reconcile.deps import Deps
from controller.reconcile.stamping import (
    Requester,
    Review,
    needs_conversation,
    refusal,
    stamp,
    vouching_conversation,
)
from controller.settings import ControllerSettings

logger = logging.getLogger(__name__)

#: Which admission handlers guard which plurals, by the id suffix: the ids are the webhooks' URL paths.
HOOKED: dict[str, tuple[str, ...]] = {
    "conversation": ("conversations",),
    "requests": ("deploymenttasks", "remediations"),
    "decisions": ("changerequests",),
}
KIND_OF_PLURAL = {
    "conversations": "Conversation",
    "deploymenttasks": "DeploymentTask",
    "remediations": "Remediation",
    "changerequests": "ChangeRequest",
}


def _review(kwargs: dict[str, Any]) -> Review:
    userinfo = kwargs.get("userinfo") or {}
    new = kwargs.get("new")
    old = kwargs.get("old")
    body = kwargs["body"]
    plural = kwargs["resource"].plural
    return Review(
        kind=KIND_OF_PLURAL[plural],
        operation=str(kwargs.get("operation") or ""),
        requester=Requester(str(userinfo.get("username") or ""), tuple(userinfo.get("groups") or ())),
        new=dict(new) if new is not None else dict(body),
        old=dict(old) if old is not None else None,
        name=str(body.get("metadata", {}).get("name") or ""),
    )


class LastingWebhookServer:
    """Kopf's `WebhookServer`, listening from our startup handler until the process ends.

    Kopf would start its server only after scanning resources and stop it first on exit, while handlers
    still patch our objects through these very webhooks (failurePolicy Fail), so those patches failed.
    Requests that come before Kopf hands over its admission function wait for it.
    """

    def __init__(self, server: kopf.WebhookServer) -> None:
        self.server = server
        self._fn: kopf.WebhookFn | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._serve(), name="admission-webhooks")

    async def _serve(self) -> None:
        async with self.server as server:
            async for _ in server(self._dispatch):
                pass

    async def _dispatch(self, request: Any, **kwargs: Any) -> Any:
        await self._ready.wait()
        assert self._fn is not None
        return await self._fn(request, **kwargs)

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        """Kopf's side: take its admission function, report where we listen, and never end."""
        self._fn = fn
        self._ready.set()
        yield kopf.WebhookClientConfig(url=f"https://{self.server.addr}:{self.server.port}")
        await asyncio.Event().wait()


class Conversations:
    """Reads Conversations for the worker rule, with the controller's own credentials (opened on first use)."""

    def __init__(self) -> None:
        self._objects: CustomObjects | None = None

    async def listing(self) -> list[dict[str, Any]]:
        if self._objects is None:
            try:
                self._objects = CustomObjects(await asyncio.to_thread(api_client_from_environment))
            except CREDENTIAL_ERRORS as error:
                raise kopf.AdmissionError(
                    f"cannot read Conversations to check the worker: {error}", code=503
                ) from error
        try:
            return await self._objects.list_raw(CONVERSATION)
        except KubeError as error:
            raise kopf.AdmissionError(f"cannot read Conversations to check the worker: {error}", code=503) from error


def register_admission(registry: kopf.OperatorRegistry, settings: ControllerSettings) -> None:
    """Register the webhooks and their server on `registry` (nothing when RINGPILOT_WEBHOOK_PORT is 0)."""
    if not settings.webhook_port:
        return
    conversations = Conversations()

    @kopf.on.startup(registry=registry, id="webhook-server")
    async def serve(**kwargs: Any) -> None:
        operator_settings: kopf.OperatorSettings = kwargs["settings"]
        operator_settings.admission.managed = None
        server = LastingWebhookServer(
            kopf.WebhookServer(
                addr=settings.webhook_address,
                port=settings.webhook_port,
                certfile=str(settings.webhook_cert_file),
                pkeyfile=str(settings.webhook_key_file),
            )
        )
        server.start()
        operator_settings.admission.server = server
        logger.info("Serving admission webhooks on %s:%d", settings.webhook_address, settings.webhook_port)

    async def mutate(memo: kopf.Memo, patch: kopf.Patch, warnings: list[str], **kwargs: Any) -> None:
        deps: Deps = memo["deps"]
        review = _review(kwargs)
        stamped = stamp(review, deps.policy, datetime.now(UTC))
        for key, value in stamped.spec.items():
            patch.spec[key] = value
        for key, value in stamped.annotations.items():
            patch.metadata.annotations[key] = value
        warnings.extend(stamped.warnings)

    async def validate(memo: kopf.Memo, **kwargs: Any) -> None:
        deps: Deps = memo["deps"]
        review = _review(kwargs)
        vouches = False
        if needs_conversation(review, deps.policy):
            vouches = vouching_conversation(review, await conversations.listing()) is not None
        reason = refusal(review, deps.policy, conversation_vouches=vouches)
        if reason:
            logger.info(
                "Refused %s of %s %s by %s: %s",
                review.operation,
                review.kind,
                review.name,
                review.requester.username,
                reason,
            )
            raise kopf.AdmissionError(reason, code=403)

    for suffix, plurals in HOOKED.items():
        for plural in plurals:
            kopf.on.mutate(
                GROUP, VERSION, plural, registry=registry, id=f"stamp-{suffix}", operations=["CREATE", "UPDATE"]
            )(mutate)
            kopf.on.validate(
                GROUP, VERSION, plural, registry=registry, id=f"guard-{suffix}", operations=["CREATE", "UPDATE"]
            )(validate)

    @kopf.on.probe(registry=registry, id="webhooks")
    async def webhooks(**_: Any) -> str:
        return await probe_webhooks(settings)


async def probe_webhooks(settings: ControllerSettings, timeout_seconds: float = 2.0) -> str:
    """A TLS handshake with our own webhook server; raises (so /healthz fails) when it does not answer."""
    host = "127.0.0.1" if settings.webhook_address in ("0.0.0.0", "", "::") else settings.webhook_address
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only whether it serves; the API server verifies the certificate
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, settings.webhook_port, ssl=context), timeout_seconds
        )
    except (OSError, TimeoutError) as error:
        raise RuntimeError(f"the admission webhook server on port {settings.webhook_port} does not answer") from error
    writer.close()
    return f"serving on port {settings.webhook_port}"
