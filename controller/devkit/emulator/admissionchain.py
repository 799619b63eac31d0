"""The write path with admission webhooks, in kube-apiserver's order.

Mutating webhooks one after another (each JSONPatch applied), then the emulator's own admission (defaulting,
pruning, schema validation), then validating webhooks in parallel, then the commit; a write raced while webhooks
ran is re-run. Writes no webhook's rules match take `Cluster`'s synchronous path unchanged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from .apierrors import ApiError
from .authn import UserInfo
from .patching import PatchError, json_patch
from .preparing import WriteOptions, clone
from .resourcetypes import ResourceType
from .verbs import Cluster, StaleWrite
from .webhooks import (
    MUTATING,
    VALIDATING,
    AdmissionAttributes,
    CallFailed,
    Hook,
    WebhookCaller,
    decode_patch,
    hooks_for,
    new_uid,
    selectors_match,
)

Json = dict[str, Any]
logger = logging.getLogger(__name__)
#: How long an update or patch without a resourceVersion keeps re-running its admission when other writers
#: change the object meanwhile. kube-apiserver's storage (`GuaranteedUpdate`) retries such a conflict until
#: the request times out, so a client never sees a 409 it did not ask for with a precondition.
STALE_RETRY_SECONDS = 30.0
_DRY_RUN_SAFE = ("None", "NoneOnDryRun")


def denial(name: str, result: Any) -> ApiError:
    """`admission webhook "<name>" denied the request: <message>` with the webhook's code (400 at least)."""
    status = result if isinstance(result, dict) else {}
    code = status["code"] if isinstance(status.get("code"), int) else 0
    denied_by = f'admission webhook "{name}" denied the request'
    message, reason = status.get("message"), status.get("reason")
    if message:
        text = f"{denied_by}: {message}"
    elif reason:
        text = f"{denied_by}: {reason}"
    else:
        text = f"{denied_by} without explanation"
    details = status.get("details") if isinstance(status.get("details"), dict) else None
    return ApiError(max(code, 400), str(reason or ""), text, details)


class AdmissionChain:
    """Asks the matching webhooks about one write."""

    def __init__(self, cluster: Cluster, caller: WebhookCaller) -> None:
        self.cluster = cluster
        self.caller = caller

    def matching(self, attrs: AdmissionAttributes) -> tuple[list[Hook], list[Hook]]:
        """(mutating, validating) webhooks whose rules match; selectors are checked per call."""
        if attrs.rt.key in (MUTATING, VALIDATING):
            return [], []
        store = self.cluster.store
        return hooks_for(store, attrs, mutating=True), hooks_for(store, attrs, mutating=False)

    async def _ask(self, hook: Hook, attrs: AdmissionAttributes, warnings: list[str]) -> Json | None:
        if not selectors_match(self.cluster.store, hook, attrs):
            return None
        if attrs.dry_run and hook.spec.get("sideEffects") not in _DRY_RUN_SAFE:
            raise ApiError.bad_request(f'admission webhook "{hook.name}" does not support dry run')
        try:
            response = await self.caller.call(hook, attrs.review(new_uid()))
        except CallFailed as e:
            failure = f'failed calling webhook "{hook.name}": {e}'
            if hook.ignores_failures:
                logger.warning("Failed calling webhook, failing open %s: %s", hook.name, e)
                return None
            logger.warning("Failed calling webhook, failing closed %s: %s", hook.name, e)
            raise ApiError(
                500, "InternalError", f"Internal error occurred: {failure}", {"causes": [{"message": failure}]}
            ) from e
        warnings.extend(str(w) for w in response.get("warnings") or [])
        if not response.get("allowed"):
            raise denial(hook.name, response.get("status"))
        return response

    async def mutate(self, attrs: AdmissionAttributes, hooks: list[Hook], warnings: list[str]) -> Json | None:
        """Run the mutating webhooks in order; returns the object with every patch applied."""
        obj = attrs.obj
        for hook in hooks:
            response = await self._ask(hook, attrs, warnings)
            if response is None or obj is None:
                continue
            try:
                operations = decode_patch(response)
                if operations is not None:
                    obj = json_patch(obj, operations)
            except (CallFailed, PatchError) as e:
                raise ApiError(500, "InternalError", f"Internal error occurred: {e}") from e
            attrs = dataclasses.replace(attrs, obj=obj)
        return obj

    async def validate(self, attrs: AdmissionAttributes, hooks: list[Hook], warnings: list[str]) -> None:
        """Run the validating webhooks together; the first refusal in list order is the answer."""
        answers = await asyncio.gather(*(self._ask(h, attrs, warnings) for h in hooks), return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer


class AdmittedWrites:
    """create/update/patch/delete through the webhook chain for requests of one user."""

    def __init__(self, cluster: Cluster, caller: WebhookCaller) -> None:
        self.cluster = cluster
        self.chain = AdmissionChain(cluster, caller)

    def _probe(
        self,
        operation: str,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        user: UserInfo,
        opts: WriteOptions,
        options: Json | None = None,
    ) -> AdmissionAttributes:
        return AdmissionAttributes(
            operation, rt, namespace or "", name, opts.subresource or "", user, None, None, opts.dry_run, options or {}
        )

    def _object(self, rt: ResourceType, obj: Json) -> Json:
        shown: Json = clone(self.cluster.render(obj, rt))
        shown["apiVersion"], shown["kind"] = rt.api_version, rt.kind
        return shown

    async def create(
        self, rt: ResourceType, namespace: str | None, body: Any, opts: WriteOptions, user: UserInfo
    ) -> Json:
        probe = self._probe("CREATE", rt, namespace, "", user, opts)
        mutating, validating = self.chain.matching(probe)
        if not mutating and not validating:
            return self.cluster.create(rt, namespace, body, opts)
        request = self.cluster.create_request(rt, namespace, body)
        meta = request["metadata"]
        attrs = dataclasses.replace(
            probe,
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or ""),
            obj=self._object(rt, request),
        )
        mutated = await self.chain.mutate(attrs, mutating, opts.warnings)
        pending = self.cluster.prepare_create(rt, self.cluster.create_request(rt, namespace, mutated), opts)
        admitted = dataclasses.replace(attrs, name=pending.new["metadata"]["name"], obj=self._object(rt, pending.new))
        await self.chain.validate(admitted, validating, opts.warnings)
        return self.cluster.finish(pending)

    async def _write(
        self, attrs: AdmissionAttributes, hooks: tuple[list[Hook], list[Hook]], new: Json, old: Json, opts: WriteOptions
    ) -> Json:
        rt = attrs.rt
        attrs = dataclasses.replace(attrs, obj=self._object(rt, new), old=self._object(rt, old))
        mutated = await self.chain.mutate(attrs, hooks[0], opts.warnings)
        if not isinstance(mutated, dict) or not isinstance(mutated.get("metadata"), dict):
            raise ApiError.bad_request("Object 'metadata' is missing or not an object")
        pending = self.cluster.prepare_write(rt, attrs.name, mutated, old, opts)
        await self.chain.validate(
            dataclasses.replace(attrs, obj=self._object(rt, pending.new)), hooks[1], opts.warnings
        )
        return self.cluster.finish(pending)

    async def update(
        self, rt: ResourceType, namespace: str | None, name: str, body: Any, opts: WriteOptions, user: UserInfo
    ) -> Json:
        probe = self._probe("UPDATE", rt, namespace, name, user, opts)
        hooks = self.chain.matching(probe)
        if not any(hooks):
            return self.cluster.update(rt, namespace, name, body, opts)
        deadline = asyncio.get_running_loop().time() + STALE_RETRY_SECONDS
        while True:
            del opts.warnings[:]
            old, new = self.cluster.update_request(rt, namespace, name, clone(body))
            try:
                return await self._write(probe, hooks, new, old, opts)
            except StaleWrite:
                if asyncio.get_running_loop().time() > deadline:
                    raise ApiError.conflict(rt.group, rt.plural, name) from None

    async def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        patch: Any,
        opts: WriteOptions,
        user: UserInfo,
    ) -> tuple[Json, bool]:
        probe = self._probe("UPDATE", rt, namespace, name, user, opts)
        hooks = self.chain.matching(probe)
        creates = self.chain.matching(dataclasses.replace(probe, operation="CREATE"))
        if not any(hooks) and not any(creates):
            return self.cluster.patch(rt, namespace, name, patch_type, patch, opts)
        deadline = asyncio.get_running_loop().time() + STALE_RETRY_SECONDS
        while True:
            del opts.warnings[:]
            old, merged = self.cluster.patch_request(rt, namespace, name, patch_type, clone(patch))
            if old is None:
                return await self.create(rt, namespace, merged, opts, user), True
            try:
                return await self._write(probe, hooks, merged, old, opts), False
            except StaleWrite:
                if asyncio.get_running_loop().time() > deadline:
                    raise ApiError.conflict(rt.group, rt.plural, name) from None

    async def delete(
        self, rt: ResourceType, namespace: str | None, name: str, options: Json, opts: WriteOptions, user: UserInfo
    ) -> tuple[Json, bool]:
        shown = {k: v for k, v in options.items() if k in ("propagationPolicy", "gracePeriodSeconds", "preconditions")}
        probe = self._probe("DELETE", rt, namespace, name, user, opts, shown)
        mutating, validating = self.chain.matching(probe)
        if mutating or validating:
            old = self.cluster.require(rt, namespace or "", name)
            attrs = dataclasses.replace(probe, old=self._object(rt, old))
            await self.chain.mutate(attrs, mutating, opts.warnings)
            await self.chain.validate(attrs, validating, opts.warnings)
        return self.cluster.delete(rt, namespace, name, options, opts)
