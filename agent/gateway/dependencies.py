"""FastAPI dependencies of the routes: the process's `Gateway`, the authenticated caller, their objects.

`caller` answers 401 for a missing or bad token. `owned_conversation` reads the Conversation and
answers 404 both when it does not exist and when it belongs to someone else (an admin sees all), so
nobody learns which names other users' chats have. `kube_refusal` turns an API error into the
envelope: the API server's 403/404/409/422 pass through, an unreachable API server is a 503.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query, Request

from agent.gateway.authenticating import Principal, authenticate
from agent.gateway.errors import GatewayError, not_found, unauthorized
from agent.gateway.wiring import Gateway
from controller.api.conversation import Conversation
from controller.api.meta import DnsLabel
from controller.kube.client import KubeError


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(gateway_of)]


async def caller(gateway: GatewayDep, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The authenticated caller, or 401."""
    try:
        principal = await authenticate(gateway.authenticator, authorization)
    except KubeError as error:
        raise GatewayError(503, f"Kubernetes could not review the token: {error}", field="kubernetes") from error
    if principal is None:
        raise unauthorized("A valid bearer token is required (Authorization: Bearer <token>)")
    return principal


CallerDep = Annotated[Principal, Depends(caller)]


def namespace_param(gateway: GatewayDep, namespace: Annotated[DnsLabel | None, Query()] = None) -> str:
    """`?namespace=`, else the gateway's namespace."""
    return namespace or gateway.settings.gateway_namespace


NamespaceDep = Annotated[str, Depends(namespace_param)]


def kube_refusal(error: KubeError, what: str) -> GatewayError:
    """The envelope for a failed API call doing `what`."""
    if error.status in (403, 404, 409, 422, 400):
        return GatewayError(error.status, f"Kubernetes refused to {what}: {error}")
    if error.status == 401:
        return unauthorized(f"Kubernetes refused the credentials to {what}")
    return GatewayError(503, f"Kubernetes is unavailable ({what}): {error}", field="kubernetes")


def owns(gateway: Gateway, principal: Principal, conversation: Conversation) -> bool:
    return conversation.spec.user == principal.user or gateway.is_admin(principal)


async def owned_conversation(
    name: DnsLabel, gateway: GatewayDep, principal: CallerDep, namespace: NamespaceDep
) -> Conversation:
    """The caller's Conversation `name` (an admin's: anyone's), else 404."""
    try:
        found = await gateway.objects_for(principal).find(Conversation, namespace, name)
    except KubeError as error:
        if error.status == 403:  # RBAC hides it from the caller: the same answer as absent
            raise not_found(f"Conversation {namespace}/{name}") from error
        raise kube_refusal(error, f"read Conversation {namespace}/{name}") from error
    if found is None or not owns(gateway, principal, found):
        raise not_found(f"Conversation {namespace}/{name}")
    return found


ConversationDep = Annotated[Conversation, Depends(owned_conversation)]
