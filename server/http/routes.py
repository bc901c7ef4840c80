"""Plumbing shared by the JSON routes that act on the broker itself rather than through `Api`
(`/api/faults`, `/api/cluster/...`): which broker a request reaches, who may change it, and
the JSON object a mutation carries."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

from aiohttp import web

from ottla.server.context import acl_host
from ottla.server.http.api import ApiError
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType

# A topic's configs or a produced message fit comfortably; anything larger is refused unread.
MAX_BODY_BYTES = 1 << 20
# How long a request's body may take to arrive once its head has.
BODY_TIMEOUT_SECONDS = 15.0
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
    """The request's body, which must be a JSON object (an empty body is `{}`). Refused with a
    4xx, never an exception out of the handler: 413 past MAX_BODY_BYTES (the app's
    client_max_size), 408 when it does not arrive within BODY_TIMEOUT_SECONDS, 400 when its
    Content-Encoding does not decode or it is not JSON (nested too deep to parse included)."""
    try:
        async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes") from None
    except TimeoutError:
        raise ApiError(408, f"the body did not arrive within {BODY_TIMEOUT_SECONDS:g} s") from None
    except web.RequestPayloadError:
        # Ended here, or aiohttp's drain of the unread rest raises the same error again, at ERROR.
        request.content.feed_eof()
        raise ApiError(400, "the body does not decode as its Content-Encoding says") from None
    try:
        value = json.loads(raw or b"{}")
    except RecursionError:
        raise ApiError(400, "the body is not JSON: nested too deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "the body must be a JSON object")
    return value
