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
    share = context.services.share
    errors = context.groups.delete_groups(names)
    # A share group's id is no classic group's: the classic answer for it is GROUP_ID_NOT_FOUND.
    errors = [share.delete_group(name) if name in share.groups else error for name, error in zip(names, errors)]
    return {"throttle_time_ms": 0, "results": [{"group_id": name, "error_code": error, "error_message": None} for name, error in zip(names, errors)]}
