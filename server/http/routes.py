"""Plumbing shared by the JSON routes that act on the broker itself rather than through `Api`
(`/api/faults`, `/api/cluster/...`): which broker a request reaches, who may change it, and
the JSON object a mutation carries."""

from __future__ import annotations

from typing import Any, Callable

from aiohttp import web

from ottla.server.context import acl_host
from ottla.server.http.api import ApiError
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType

# The running broker and the principal of an HTTP request (the app's keys stay in app.py).
BrokerOf = Callable[[web.Request], Any]
PrincipalOf = Callable[[web.Request], str]


def running_services(broker: Any) -> Any:
    """The broker's services; 409 while it is not running."""
    services = broker.services
    if services is None:
        raise ApiError(409, "the broker is not running")
    return services


def require_cluster_alter(request: web.Request, services: Any, principal_of: PrincipalOf, refusal: str) -> None:
    """Refuse with 403 and `refusal` a principal the authorizer does not allow to Alter the
    cluster, as Kafka does for its own cluster-wide changes; without an authorizer all may."""
    authorizer = services.authorizer
    if authorizer is None:
        return
    host = acl_host(request.remote or "")
    if not authorizer.authorize(principal_of(request), host, AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):
        raise ApiError(403, refusal)


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's body, which must be a JSON object (400 otherwise)."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body
