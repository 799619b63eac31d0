"""The kubernetes execution plane (the default): targets are Deployments in ring namespaces.

A target is a Deployment labelled `app.kubernetes.io/name=<app>` in a namespace labelled
`ringpilot.dev/ring=<n>` (controller/kube/workloads.py). Reads are batched per namespace; every
mutating call runs once per idempotency key (controller/planes/idempotency.py) and what it applied is
recorded in PostgreSQL (controller/planes/recording.py) so rollback, install and config re-apply work.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

import psycopg

from controller.kube.client import ApiClient
from controller.kube.workloads import app_selector, bounded, find_workloads, ring_namespaces
from controller.planes import manifests as m
from controller.planes import recording
from controller.planes.base import ActionResult, ExecutionPlane, Observation, PlaneError, RingHealth, TargetRef
from controller.planes.idempotency import DEFAULT_STALE_CLAIM_SECONDS, KeyedRunner
from controller.planes.kubeapi import Json, KubeError, plane_api
from controller.planes.recording import ManifestRecord, RecordAction
from controller.storage.db import Pool

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _name(item: Json) -> str:
    return str((item.get("metadata") or {}).get("name"))


class KubernetesPlane(ExecutionPlane):
    """Rolls out, observes and repairs Deployments through the Kubernetes API."""

    name = "kubernetes"

    def __init__(
        self,
        api_client: ApiClient,
        pool: Pool,
        *,
        concurrency: int = 8,
        record_snapshots: bool = True,
        owner: str | None = None,
        stale_claim_seconds: float = DEFAULT_STALE_CLAIM_SECONDS,
    ) -> None:
        self.api = plane_api(api_client)
        self.pool = pool
        self.runner = KeyedRunner(pool, owner=owner, stale_claim_seconds=stale_claim_seconds)
        self.concurrency = concurrency
        self.record_snapshots = record_snapshots

    async def _bounded(self, calls: Iterable[Awaitable[T]]) -> list[T]:
        return await bounded(calls, self.concurrency)

    # ---- reads -------------------------------------------------------------------------------

    async def ring_namespaces(self, ring: int) -> list[str]:
        """Namespaces labelled `ringpilot.dev/ring=<ring>`, sorted."""
        return list(await ring_namespaces(self.api, ring))

    async def _ring_deployments(self, app: str, ring: int) -> list[tuple[str, Json]]:
        found = await find_workloads(self.api, ring=ring, apps=[app], concurrency=self.concurrency)
        return [(w.namespace, w.deployment) for w in found]

    async def targets(self, app: str, ring: int) -> list[TargetRef]:
        """The app's Deployments in the ring's namespaces (one list per namespace)."""
        found = await self._ring_deployments(app, ring)
        return [TargetRef(self.name, app, ring, namespace=ns, name=_name(d)) for ns, d in found]

    async def observe(self, targets: list[TargetRef]) -> list[Observation]:
        """Observe targets with one Deployment list and at most one ConfigMap list per namespace.

        A workload seen for the first time (no row in `plane_manifests`) is recorded as a snapshot, so
        `install` and `reapply_config` work for workloads that Ringpilot never applied (one query, and
        one batched insert on first sight).
        """
        groups: dict[str, list[int]] = defaultdict(list)
        for index, target in enumerate(targets):
            groups[self._located(target)[0]].append(index)
        results: list[Observation | None] = [None] * len(targets)
        seen: dict[tuple[str, str], tuple[TargetRef, Json, dict[str, Json]]] = {}

        async def one_namespace(namespace: str, indexes: list[int]) -> None:
            group = [targets[i] for i in indexes]
            deployments = {_name(d): d for d in await self._list_or_empty(namespace, group)}
            wanted = {m.config_map_name(deployments[t.name]) for t in group if t.name in deployments} - {None}
            config_maps = {_name(c): c for c in await self.api.list_config_maps(namespace)} if wanted else {}
            for i, target in zip(indexes, group, strict=True):
                deployment = deployments.get(str(target.name))
                results[i] = m.observe_deployment(target, deployment, config_maps)
                if deployment is not None:
                    seen[(namespace, str(target.name))] = (target, deployment, config_maps)

        await self._bounded(one_namespace(ns, idx) for ns, idx in groups.items())
        if self.record_snapshots:
            await self._snapshot_first_sightings(seen)
        return [r for r in results if r is not None]

    async def _snapshot_first_sightings(
        self, seen: dict[tuple[str, str], tuple[TargetRef, Json, dict[str, Json]]]
    ) -> None:
        try:
            new = await recording.unrecorded(self.pool, list(seen))
            entries = []
            for key in sorted(new):
                target, deployment, config_maps = seen[key]
                config_map = m.config_map_name(deployment)
                found = config_maps.get(config_map) if config_map else None
                entries.append(
                    ManifestRecord(
                        namespace=key[0],
                        name=key[1],
                        app=target.app,
                        action=RecordAction.SNAPSHOT,
                        manifest=m.installable(deployment),
                        image=m.main_image(deployment),
                        config_map=config_map,
                        config_data=m.config_map_data(found) if found is not None else None,
                    )
                )
            await recording.record_many(self.pool, entries)
        except psycopg.Error as error:  # observing must not fail because bookkeeping did
            logger.warning("Could not record first-sighting snapshots of %d workloads: %s", len(seen), error)

    async def _list_or_empty(self, namespace: str, group: list[TargetRef]) -> list[Json]:
        try:
            return await self.api.list_deployments(namespace, app_selector(t.app for t in group))
        except KubeError as error:
            if error.not_found:  # the namespace itself is gone: so are its workloads
                return []
            raise

    async def health(self, app: str, ring: int, version: str) -> RingHealth:
        """Counts over the ring's Deployments: updated = runs `version` and is rolled out; healthy =
        updated and available; failed = updated and not available. ConfigMaps are not read here."""
        observations = []
        updated = healthy = failed = 0
        for namespace, deployment in await self._ring_deployments(app, ring):
            target = TargetRef(self.name, app, ring, namespace=namespace, name=_name(deployment))
            observation = m.observe_deployment(target, deployment, None)
            observations.append(observation)
            if observation.version == version and observation.updated:
                updated += 1
                healthy += observation.available
                failed += not observation.available
        return RingHealth(ring, len(observations), updated, healthy, failed, tuple(observations))

    # ---- writes ------------------------------------------------------------------------------

    def _located(self, target: TargetRef) -> tuple[str, str]:
        if not target.namespace or not target.name:
            raise PlaneError(f"Target {target.key!r} has no namespace and name", transient=False)
        return target.namespace, target.name

    async def apply(self, target: TargetRef, version: str, artifact: str | None, key: str) -> ActionResult:
        """Patch the main container to `<artifact or current repository>:<version>`, recording the manifest,
        the previous image and the ConfigMap data first."""
        self._located(target)
        return await self.runner.run_action(
            self.name, "apply", target, key, lambda: self._apply(target, version, artifact, key)
        )

    async def _apply(self, target: TargetRef, version: str, artifact: str | None, key: str) -> ActionResult:
        namespace, name = self._located(target)
        deployment = await self.api.read_deployment(namespace, name)
        current = self._image(deployment, target)
        desired = m.target_image(current, version, artifact)
        if current == desired:
            last = await recording.latest_apply(self.pool, namespace, name)
            if await recording.latest(self.pool, namespace, name) is None:
                await self._record(RecordAction.SNAPSHOT, target, deployment, desired, None, key)
            previous = m.image_tag(last.previous_image) if last is not None and last.image == desired else None
            return ActionResult(target, changed=False, detail=f"Already runs {desired}", previous_version=previous)
        entry = await self._record(RecordAction.APPLY, target, m.with_image(deployment, desired), desired, current, key)
        await self._patch_or_forget(entry, m.image_patch(deployment, desired))
        logger.info("Patched Deployment %s/%s image %r to %r", namespace, name, current, desired)
        return ActionResult(
            target,
            changed=True,
            detail=f"Updated image {current} to {desired}",
            previous_version=m.image_tag(current),
        )

    async def rollback(self, target: TargetRef, key: str) -> ActionResult:
        """Restore the image the last recorded apply replaced."""
        self._located(target)
        return await self.runner.run_action(self.name, "rollback", target, key, lambda: self._rollback(target, key))

    async def _rollback(self, target: TargetRef, key: str) -> ActionResult:
        namespace, name = self._located(target)
        last = await recording.latest_apply(self.pool, namespace, name)
        if last is None or not last.previous_image:
            raise PlaneError(f"No recorded apply to roll back for Deployment {target.key}", transient=False)
        deployment = await self.api.read_deployment(namespace, name)
        current = self._image(deployment, target)
        restored = last.previous_image
        if current == restored:
            return ActionResult(target, changed=False, detail=f"Already runs {restored}", previous_version=None)
        config = (last.config_map, last.config_data) if last.config_data is not None else None
        entry = await self._record(
            RecordAction.ROLLBACK, target, m.with_image(deployment, restored), restored, current, key, config
        )
        await self._patch_or_forget(entry, m.image_patch(deployment, restored))
        logger.info("Rolled back Deployment %s/%s image %r to %r", namespace, name, current, restored)
        return ActionResult(
            target,
            changed=True,
            detail=f"Rolled back image {current} to {restored}",
            previous_version=m.image_tag(current),
        )

    async def install(self, target: TargetRef, key: str) -> ActionResult:
        """Re-create a deleted Deployment (and its ConfigMap, if gone too) from the last recorded manifest."""
        self._located(target)
        return await self.runner.run_action(self.name, "install", target, key, lambda: self._install(target))

    async def _install(self, target: TargetRef) -> ActionResult:
        namespace, name = self._located(target)
        if await self._exists(self.api.read_deployment(namespace, name)):
            return ActionResult(target, changed=False, detail="Deployment already exists")
        last = await recording.latest(self.pool, namespace, name)
        if last is None:
            raise PlaneError(f"No recorded manifest to re-create Deployment {target.key}", transient=False)
        detail = f"Re-created Deployment from recorded revision {last.revision}"
        if (
            last.config_map
            and last.config_data is not None
            and not await self._exists(self.api.read_config_map(namespace, last.config_map))
        ):
            await self._create_config_map(target, last.config_map, last.config_data)
            detail += f" and ConfigMap {last.config_map}"
        manifest = m.installable(last.manifest)
        manifest["metadata"].update(namespace=namespace, name=name)
        try:
            await self.api.create_deployment(namespace, manifest)
        except KubeError as error:
            if error.conflict:
                return ActionResult(target, changed=False, detail="Deployment was re-created meanwhile")
            raise
        logger.info("Re-created Deployment %s/%s from revision %d", namespace, name, last.revision)
        return ActionResult(target, changed=True, detail=detail)

    async def restart(self, target: TargetRef, key: str) -> ActionResult:
        """Rollout restart: stamp `kubectl.kubernetes.io/restartedAt` on the pod template."""
        namespace, name = self._located(target)

        async def act() -> ActionResult:
            stamp = datetime.now(UTC).isoformat()
            await self.api.patch_deployment(namespace, name, m.restart_patch(stamp))
            logger.info("Restarted Deployment %s/%s", namespace, name)
            return ActionResult(target, changed=True, detail=f"Restarted at {stamp}")

        return await self.runner.run_action(self.name, "restart", target, key, act)

    async def reapply_config(self, target: TargetRef, key: str) -> ActionResult:
        """Restore the ConfigMap data recorded with the last apply (re-creating the ConfigMap if gone)."""
        self._located(target)
        return await self.runner.run_action(self.name, "reapply_config", target, key, lambda: self._reapply(target))

    async def _reapply(self, target: TargetRef) -> ActionResult:
        namespace, name = self._located(target)
        last = await recording.latest_config(self.pool, namespace, name)
        if last is None or last.config_map is None or last.config_data is None:
            raise PlaneError(f"No recorded ConfigMap data for Deployment {target.key}", transient=False)
        try:
            current = await self.api.read_config_map(namespace, last.config_map)
        except KubeError as error:
            if not error.not_found:
                raise
            await self._create_config_map(target, last.config_map, last.config_data)
            return ActionResult(target, changed=True, detail=f"Re-created ConfigMap {last.config_map}")
        if m.config_map_data(current) == last.config_data:
            return ActionResult(target, changed=False, detail=f"ConfigMap {last.config_map} already matches")
        await self.api.set_config_map_data(namespace, last.config_map, last.config_data)
        logger.info("Restored ConfigMap %s/%s from revision %d", namespace, last.config_map, last.revision)
        return ActionResult(target, changed=True, detail=f"Restored ConfigMap {last.config_map} data")

    # ---- shared steps ------------------------------------------------------------------------

    @staticmethod
    def _image(deployment: Json, target: TargetRef) -> str:
        image = m.main_image(deployment)
        if image is None:
            raise PlaneError(f"Deployment {target.key} has no container image", transient=False)
        return image

    @staticmethod
    async def _exists(read: Awaitable[Json]) -> bool:
        try:
            await read
        except KubeError as error:
            if error.not_found:
                return False
            raise
        return True

    async def _create_config_map(self, target: TargetRef, name: str, data: dict[str, str]) -> None:
        namespace, _ = self._located(target)
        try:
            await self.api.create_config_map(namespace, m.config_map_manifest(namespace, name, target.app, data))
        except KubeError as error:
            if not error.conflict:
                raise

    async def _record(
        self,
        action: RecordAction,
        target: TargetRef,
        deployment: Json,
        image: str,
        previous: str | None,
        key: str,
        config: tuple[str | None, dict[str, str] | None] | None = None,
    ) -> ManifestRecord:
        """Append a row for `deployment` as it will be; reads its ConfigMap unless `config` is given."""
        namespace, name = self._located(target)
        if config is None:
            config_map, data = m.config_map_name(deployment), None
            if config_map:
                try:
                    data = m.config_map_data(await self.api.read_config_map(namespace, config_map))
                except KubeError as error:
                    if not error.not_found:
                        raise
            config = (config_map, data)
        entry = ManifestRecord(
            namespace=namespace,
            name=name,
            app=target.app,
            action=action,
            manifest=m.installable(deployment),
            image=image,
            previous_image=previous,
            config_map=config[0],
            config_data=config[1],
            idempotency_key=key,
        )
        return await recording.record(self.pool, entry)

    async def _patch_or_forget(self, entry: ManifestRecord, patch: Json) -> None:
        """Patch the Deployment; if that fails, drop the row recorded for it and re-raise."""
        try:
            await self.api.patch_deployment(entry.namespace, entry.name, patch)
        except PlaneError:
            await recording.forget(self.pool, entry)
            raise
