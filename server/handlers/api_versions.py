"""ApiVersions: exactly the APIs and versions the handler table serves, and from v3 on the
features this broker supports and the cluster finalized (KIP-584, `ottla.server.features`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import ApiVersionsRequest, ApiVersionsResponse

API = ApiKey.API_VERSIONS
VERSIONS = (0, 5)


# ApiVersionsRequest.isValid: what a client may call itself and its version, from v3.
_SOFTWARE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")


def handle(context: RequestContext, header: RequestHeader, request: ApiVersionsRequest) -> ApiVersionsResponse:
    if header.api_version >= 3 and not (
        _SOFTWARE.fullmatch(request.get("client_software_name") or "") and _SOFTWARE.fullmatch(request.get("client_software_version") or "")
    ):
        return {"error_code": ErrorCode.INVALID_REQUEST, "api_keys": [], "throttle_time_ms": 0}
    if header.api_version >= 5:
        error = _target_error(context, request)
        if error is not None:
            return {"error_code": error, "api_keys": [], "throttle_time_ms": 0}
    body = context.services.api_versions_body()
    if header.api_version >= 3:
        features = context.services.features
        body["supported_features"] = features.supported(include_min_zero=header.api_version >= 4)
        body["finalized_features_epoch"] = features.epoch
        body["finalized_features"] = features.finalized()
    return body


def _target_error(context: RequestContext, request: ApiVersionsRequest) -> ErrorCode | None:
    """KIP-1242: a client names the cluster and node it means to reach, both or neither (else
    INVALID_REQUEST); naming another one means its metadata is stale: REBOOTSTRAP_REQUIRED.
    (Kafka 4.4's answers, checked against the reference broker.)"""
    cluster_id, node_id = request.get("cluster_id"), request.get("node_id", -1)
    if cluster_id is None and node_id == -1:
        return None
    if cluster_id is None or node_id == -1:
        return ErrorCode.INVALID_REQUEST
    if cluster_id != context.config.cluster_id or node_id != context.node.node_id:
        return ErrorCode.REBOOTSTRAP_REQUIRED
    return None
