"""DeleteGroups: empty groups only (NON_EMPTY_GROUP otherwise), offsets included."""

from __future__ import annotations

from typing import Any

from ottla.wire.api import ApiKey

API = ApiKey.DELETE_GROUPS
VERSIONS = (0, 2)


def handle(broker, header, request: dict[str, Any]) -> dict[str, Any]:
    names = list(request["groups_names"])
    errors = broker.groups.delete_groups(names)
    return {"throttle_time_ms": 0, "results": [{"group_id": name, "error_code": error} for name, error in zip(names, errors)]}
