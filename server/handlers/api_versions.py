"""ApiVersions: exactly the APIs and versions the handler table serves."""

from __future__ import annotations

from typing import Any

from ottla.wire.api import ApiKey

API = ApiKey.API_VERSIONS
VERSIONS = (0, 4)


def handle(broker, header, request: dict[str, Any]) -> dict[str, Any]:
    return broker.dispatcher.api_versions_body()
