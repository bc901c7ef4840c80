"""DeleteGroups: empty groups only (NON_EMPTY_GROUP otherwise), offsets included. The
message field of v3 stays null, as Kafka 4.4 leaves it for every error it answers here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.wire.api import ApiKey
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import DeleteGroupsRequest, DeleteGroupsResponse

API = ApiKey.DELETE_GROUPS
VERSIONS = (0, 3)


def handle(context: RequestContext, header: RequestHeader, request: DeleteGroupsRequest) -> DeleteGroupsResponse:
    names = list(request["groups_names"])
    errors = context.groups.delete_groups(names)
    return {"throttle_time_ms": 0, "results": [{"group_id": name, "error_code": error, "error_message": None} for name, error in zip(names, errors)]}
