"""ApiVersions: exactly the APIs and versions the handler table serves."""

from __future__ import annotations

from ottla.server.context import RequestContext
from ottla.wire.api import ApiKey
from ottla.wire.header import RequestHeader
from ottla.wire.messages.types import ApiVersionsRequest, ApiVersionsResponse

API = ApiKey.API_VERSIONS
VERSIONS = (0, 4)


def handle(context: RequestContext, header: RequestHeader, request: ApiVersionsRequest) -> ApiVersionsResponse:
    return context.services.api_versions_body()
