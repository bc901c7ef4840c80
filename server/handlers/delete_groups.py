"""DeleteGroups: empty groups only (NON_EMPTY_GROUP otherwise), offsets included. The
message field of v3 stays null, as Kafka 4.4 leaves it for every error it answers here.
With an authorizer a group needs DELETE, else GROUP_AUTHORIZATION_FAILED after the others
(KafkaApis.handleDeleteGroupsRequest)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import DeleteGroupsRequest, DeleteGroupsResponse

API = ApiKey.DELETE_GROUPS
VERSIONS = (0, 3)


def handle(context: RequestContext, header: RequestHeader, request: DeleteGroupsRequest) -> DeleteGroupsResponse:
    deletable = context.authorized(AclOperation.DELETE, ResourceType.GROUP, request["groups_names"])
    names = [name for name in request["groups_names"] if name in deletable]
    refused = [name for name in request["groups_names"] if name not in deletable]
    share = context.services.share
    errors = context.groups.delete_groups(names)
    # A share group's id is no classic group's: the classic answer for it is GROUP_ID_NOT_FOUND.
    errors = [share.delete_group(name) if name in share.groups else error for name, error in zip(names, errors)]
    errors += [ErrorCode.GROUP_AUTHORIZATION_FAILED] * len(refused)
    return {"throttle_time_ms": 0, "results": [{"group_id": name, "error_code": error, "error_message": None} for name, error in zip(names + refused, errors)]}
