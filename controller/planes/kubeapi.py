"""The kubernetes plane's view of a failed API call: a `PlaneError` that keeps the HTTP status.

The calls themselves live in the Kubernetes access layer (controller/kube/coreapps.py); this module
turns each `controller.kube.errors.KubeError` into `KubeError` here, a `PlaneError` whose `transient`
the engines read: 400/404/409/422 and other 4xx permanent; 408, 429, 5xx and no answer transient.
"""

from __future__ import annotations

from controller.kube import errors
from controller.kube.client import ApiClient, Json
from controller.kube.coreapps import CoreApps
from controller.planes.base import PlaneError

__all__ = ["Json", "KubeError", "classify_plane_error", "plane_api"]


class KubeError(PlaneError):
    """A failed API call; `status` is the HTTP status (0 when no response came back)."""

    def __init__(self, message: str, *, status: int, transient: bool) -> None:
        self.status = status
        super().__init__(message, transient=transient)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


def as_plane_error(error: errors.KubeError) -> KubeError:
    return KubeError(error.message, status=int(error.status or 0), transient=error.transient)


def classify_plane_error(error: BaseException, what: str) -> KubeError:
    """The `PlaneError` for a failed call doing `what` (e.g. "patch Deployment ring-0-lab/web")."""
    return as_plane_error(errors.classify_api_error(error, what))


def plane_api(api_client: ApiClient) -> CoreApps:
    """The core/apps client of the plane: its failures are `KubeError`s of this module."""
    return CoreApps(api_client, on_error=as_plane_error)
