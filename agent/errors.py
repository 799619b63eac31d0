"""The agent's error vocabulary: what a turn or a tool can fail with, classified once where it happens.

Providers turn SDK and HTTP errors into `Unavailable` (transient: the turn is retried later with
capped backoff and the user is told it is delayed; the controller's own class, from
controller/core/errors.py, with a `reason` for the condition) or `TurnFailed` (permanent: a `Failed`
condition and a reply saying why). Tools raise `ToolError` for expected failures; the registry hands those
back to the model and the user as an error result, so a tool never crashes a turn.
"""

from __future__ import annotations

from controller.core.errors import Unavailable

__all__ = ["AgentError", "PermissionDenied", "ToolError", "TurnFailed", "Unavailable"]


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class TurnFailed(AgentError):
    """The turn cannot be answered and retrying will not help (bad request, bad credentials, no access).

    `reason` is a CamelCase word for the `Failed` condition (e.g. `ProviderRejected`).
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class ToolError(AgentError):
    """A tool could not do what was asked; the message is shown to the model and the user."""


class PermissionDenied(ToolError):
    """The asking user's role lacks the permission a tool requires."""

    def __init__(self, tool: str, permission: str, role: str, held: list[str]) -> None:
        self.tool = tool
        self.permission = permission
        self.role = role
        have = ", ".join(held) or "nothing"
        super().__init__(
            f"Permission denied: {tool} needs the `{permission}` permission, and your role `{role}` has only: {have}."
        )
