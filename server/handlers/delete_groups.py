"""DeleteGroups: empty groups only (NON_EMPTY_GROUP otherwise), offsets included."""

from __future__ import annotations

from ottla.server.context import RequestContext
from ottla.wire.api import ApiKey
from ottla.wire.header import RequestHeader
from ottla.wire.messages.types import DeleteGroupsRequest, DeleteGroupsResponse

API = ApiKey.DELETE_GROUPS
VERSIONS = (0, 2)


def handle(context: RequestContext, header: RequestHeader, request: DeleteGroupsRequest) -> DeleteGroupsResponse:
    names = list(request["groups_names"])
    errors = context.groups.delete_groups(names)
    return {"throttle_time_ms": 0, "results": [{"group_id": name, "error_code": error} for name, error in zip(names, errors)]}
