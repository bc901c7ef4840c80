"""GetTelemetrySubscriptions (KIP-714): which metrics this client instance should push, how
often and how compressed, from the CLIENT_METRICS subscriptions that match it
(`ottla.server.telemetry`); a zero instance id is given a new one. No ACL guards it, as in Kafka."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from ottla.server.context import RequestContext
from ottla.server.telemetry import ClientInfo, now_ms
from ottla.wire.api import ApiKey
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse

API = ApiKey.GET_TELEMETRY_SUBSCRIPTIONS
VERSIONS = (0, 0)


def handle(context: RequestContext, header: RequestHeader, request: GetTelemetrySubscriptionsRequest) -> GetTelemetrySubscriptionsResponse:
    answer = context.services.telemetry.get_subscriptions(bytes(request["client_instance_id"]), client_info(context, header), now_ms())
    return cast("GetTelemetrySubscriptionsResponse", answer)


def client_info(context: RequestContext, header: RequestHeader) -> ClientInfo:
    """What a subscription's `match` sees of the client: its id, address and port."""
    host, _, port = context.client.address.rpartition(":")
    return ClientInfo(header.client_id or "", host.strip("[]"), port)
