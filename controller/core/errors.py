"""The controller's error vocabulary; handlers translate it into Kopf's at the edge.

Domain code raises these; `controller.operator.handlers` maps `InvalidSpec` to a condition (never a
retry), `Unavailable` to a delayed retry, and anything else to Kopf's default backoff.
"""

from __future__ import annotations

from controller.api.semantics import SpecProblem


class ControllerError(Exception):
    """Base of every error the controller raises on purpose."""


class InvalidSpec(ControllerError):
    """The spec is well-formed but cannot be acted on; the message names the field."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class Unavailable(ControllerError):
    """A dependency (PostgreSQL, Redis, an execution plane) is down; retry later."""

    def __init__(self, message: str, retry_after_seconds: float = 10.0) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(message)
