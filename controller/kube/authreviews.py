"""Questions the gateway asks the API server about callers: TokenReview and the server's version.

`review_token` answers who a bearer token belongs to (`authentication.k8s.io/v1` TokenReview, asked
with the caller's client's own credentials); `server_version` is the cheapest request that proves the
API server answers (the gateway's health check). Both go through `call_json`, so failures are `KubeError`.
"""

from __future__ import annotations

from kubernetes import client

from controller.kube.client import Json, call_json


async def review_token(api_client: client.ApiClient, token: str, audiences: tuple[str, ...] = ()) -> Json:
    """The TokenReview's `status` for `token` (`authenticated`, `user`, `error`)."""
    spec: Json = {"token": token, **({"audiences": list(audiences)} if audiences else {})}
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
    answer = await call_json("review a token", client.AuthenticationV1Api(api_client).create_token_review, body)
    status: Json = answer.get("status") or {}
    return status


async def server_version(api_client: client.ApiClient) -> Json:
    """The API server's `/version`."""
    return await call_json("read the API server's version", client.VersionApi(api_client).get_code)
