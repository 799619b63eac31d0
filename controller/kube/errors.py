"""One translation of a failed Kubernetes API call: `KubeError`, with the HTTP status and whether to retry.

Every call of the access layer raises `KubeError` and nothing else: 400/401/403/404/409/422 and other 4xx
are permanent; 408, 429, 5xx and transport errors (no response, status 0) are transient. It subclasses
the official `ApiException`, so a caller that catches that keeps working.
"""

from __future__ import annotations

import json

import urllib3
from kubernetes.client.exceptions import ApiException

_TRANSIENT_STATUSES = {408, 429}

#: What a blocking call of the official client raises when the API server did not answer properly.
TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)


class KubeError(ApiException):
    """A failed API call; `status` is the HTTP status (0 when no response came back)."""

    def __init__(self, message: str, *, status: int, transient: bool, reason: str = "", body: str | None = None):
        super().__init__(status=status, reason=reason or message)
        self.status: int = status
        self.body = body
        self.message = message
        self.transient = transient

    def __str__(self) -> str:
        return self.message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


def api_message(error: ApiException) -> str:
    """The API server's own `message` from an error body, else the HTTP reason."""
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(error.reason or "no reason given")


def classify_api_error(error: BaseException, what: str) -> KubeError:
    """The `KubeError` for a failed call doing `what` (e.g. "patch Deployment ring-0-lab/web")."""
    if isinstance(error, KubeError):
        return error
    if isinstance(error, ApiException):
        status = int(error.status or 0)
        transient = status == 0 or status >= 500 or status in _TRANSIENT_STATUSES
        return KubeError(
            f"Could not {what}: {status} {api_message(error)}",
            status=status,
            transient=transient,
            reason=str(error.reason or ""),
            body=error.body,
        )
    return KubeError(f"Could not {what}: {type(error).__name__}: {error}", status=0, transient=True)
