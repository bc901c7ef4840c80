"""PushTelemetry (KIP-714): a client instance's metrics, OTLP MetricsData compressed as it
chose, checked and kept as Kafka's ClientMetricsManager checks them (`ottla.server.telemetry`);
`/metrics` and the console show them. No ACL guards it, as in Kafka."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.handlers.get_telemetry_subscriptions import client_info
from ottla.server.telemetry import now_ms
from ottla.wire.api import ApiKey
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import PushTelemetryRequest, PushTelemetryResponse

API = ApiKey.PUSH_TELEMETRY
VERSIONS = (0, 0)


def handle(context: RequestContext, header: RequestHeader, request: PushTelemetryRequest) -> PushTelemetryResponse:
    metrics = request["metrics"]
    error = context.services.telemetry.push(
        bytes(request["client_instance_id"]),
        request["subscription_id"],
        request["terminating"],
        request["compression_type"],
        None if metrics is None else bytes(metrics),
        client_info(context, header),
        now_ms(),
    )
    return {"throttle_time_ms": 0, "error_code": error}
