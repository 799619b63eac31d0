"""Our errors and outages in Kopf's terms, for the Kopf handlers (controller/operator/handlers.py).

`kopf_errors` turns `Unavailable` and a dependency outage into a delayed `kopf.TemporaryError`;
`note_outage` and `clear_outage` set and clear the `Waiting` condition through the handler's patch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import Any

import kopf

from controller.api.meta import utcnow
from controller.core import conditions
from controller.core.errors import DEFAULT_RETRY_SECONDS, Unavailable
from controller.core.outcome import Outcome
from controller.operator import outages

logger = logging.getLogger(__name__)


@contextmanager
def kopf_errors(retry: int | None = None) -> Iterator[None]:
    """Translate our error vocabulary into Kopf's: `Unavailable` is a delayed retry.

    With Kopf's `retry` count, an `Unavailable` without its own delay and an error meaning PostgreSQL,
    Redis or the Kubernetes API is down retry after `outages.retry_delay_seconds` (1 s, doubling, ≤ 8 s).
    """
    try:
        yield
    except kopf.TemporaryError:
        raise
    except Unavailable as error:
        if error.retry_after_seconds is not None:
            delay = error.retry_after_seconds
        else:
            delay = DEFAULT_RETRY_SECONDS if retry is None else outages.retry_delay_seconds(retry)
        raise kopf.TemporaryError(str(error), delay=delay) from error
    except Exception as error:
        if retry is None or outages.dependency_of(error) is None:
            raise
        raise kopf.TemporaryError(
            str(error) or type(error).__name__, delay=outages.retry_delay_seconds(retry)
        ) from error


def note_outage(body: kopf.Body, patch: kopf.Patch, error: BaseException) -> None:
    """Set `Waiting` naming the dependency behind `error` on the object (with the handler's patch)."""
    found = outages.dependency_of(error)
    if found is None:
        return
    condition = outages.waiting_condition(dict(body), *found, error, utcnow())
    patch.fns.append(partial(conditions.merge_into, owned=(condition,)))
    logger.warning(
        "%s %s/%s waits: %s", body.get("kind"), body.metadata.namespace, body.metadata.name, condition.message
    )


def clear_outage(body: kopf.Body, patch: kopf.Patch, outcome: Outcome | None = None) -> Outcome | None:
    """Set `Waiting` False once a reconcile got through an outage; returns `outcome` with it.

    An outcome that writes the whole `status.conditions` list (copied from the body, so still holding
    the outage's `Waiting`) gets the cleared entry in that list; otherwise it is set by type on the object.
    """
    back = outages.cleared(dict(body), utcnow())
    if back is None:
        return outcome
    written = (outcome.status.get("conditions") if outcome is not None else None) or None
    if outcome is None or not isinstance(written, list):
        patch.fns.append(partial(conditions.merge_into, owned=(back,)))
        return outcome
    holder: dict[str, Any] = {"status": {"conditions": list(written)}}
    conditions.merge_into(holder, (back,))
    return replace(outcome, status={**outcome.status, "conditions": holder["status"]["conditions"]})
