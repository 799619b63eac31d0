"""The error vocabulary shared by the controller and the agent; each process translates it at its edge.

Domain code raises `Unavailable` when a dependency (PostgreSQL, Redis, an execution plane, the
language model) is down: `controller.operator.handlers` turns it into a delayed Kopf retry and the
agent delays the turn. A spec that cannot be acted on is not an exception: admission answers it with
an `InvalidSpec` condition (controller/reconcile/admission.py). Anything else gets Kopf's backoff.
"""

from __future__ import annotations

#: The delay before a retry when the error does not say how long to wait.
DEFAULT_RETRY_SECONDS = 10.0


class ControllerError(Exception):
    """Base of every error the controller raises on purpose."""


class Unavailable(ControllerError):
    """A dependency is down or overloaded; retry later.

    `retry_after_seconds` is the wait the dependency asked for, if any (None: the caller's own backoff,
    `DEFAULT_RETRY_SECONDS` for the controller). `reason` is a CamelCase word for a condition (e.g.
    `ProviderOverloaded`).
    """

    def __init__(self, message: str, retry_after_seconds: float | None = None, *, reason: str = "Unavailable") -> None:
        self.retry_after_seconds = retry_after_seconds
        self.reason = reason
        super().__init__(message)
