"""A bare Kopf operator for the baseline benchmark: one handler, one status patch per object.

Run by bench/baselines.py with `kopf run`; it is the floor every Ringpilot handler is compared with.
"""

from __future__ import annotations

from typing import Any

import kopf


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = "bench.ringpilot.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="bench.ringpilot.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="bench.ringpilot.dev")
    settings.posting.enabled = False


@kopf.on.create("bench.ringpilot.dev", "v1", "items")
def created(patch: kopf.Patch, **_: Any) -> None:
    patch.status["done"] = True
