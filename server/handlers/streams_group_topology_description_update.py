"""StreamsGroupTopologyDescriptionUpdate (KIP-1331): a streams group member pushes its
topology's description, after a heartbeat answered TopologyDescriptionRequired, for
StreamsGroupDescribe to show (`ottla.server.groups.streams.descriptions`).

As Kafka 4.4's KafkaApis.handleStreamsGroupTopologyDescriptionUpdate: with `streams.version`
finalized at 0, UNSUPPORTED_VERSION; then READ on the group (GROUP_AUTHORIZATION_FAILED). Then
GroupCoordinatorService.throwIfStreamsGroupTopologyDescriptionUpdateInvalid: UNSUPPORTED_VERSION
unless `group.streams.topology.description.plugin.class` names Kafka's in-memory plugin (the
default names none: the feature is off), INVALID_REQUEST for an empty member or group id. Then,
at the group's coordinator, the group must be a streams group (GROUP_ID_NOT_FOUND) with the
member in it at the group's topology epoch (`StreamsGroupManager.update_description`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ottla.server.cluster.coordinators import GROUP, elsewhere
from ottla.server.context import RequestContext
from ottla.server.groups.streams.descriptions import plugin_configured
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import StreamsGroupTopologyDescriptionUpdateRequest, StreamsGroupTopologyDescriptionUpdateResponse

API = ApiKey.STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE
VERSIONS = (0, 0)

def handle(context: RequestContext, header: RequestHeader, request: StreamsGroupTopologyDescriptionUpdateRequest) -> StreamsGroupTopologyDescriptionUpdateResponse:
    if context.services.features.level("streams.version") < 1:
        return _answer(ErrorCode.UNSUPPORTED_VERSION, None)
    group_id = request["group_id"]
    if not context.authorize(AclOperation.READ, ResourceType.GROUP, group_id):
        return _answer(ErrorCode.GROUP_AUTHORIZATION_FAILED, None)
    if not plugin_configured(context.config.value):
        return _answer(ErrorCode.UNSUPPORTED_VERSION, "The broker has no streams group topology description plugin configured.")
    if not request["member_id"]:
        return _answer(ErrorCode.INVALID_REQUEST, "MemberId can't be empty.")
    if not group_id:
        return _answer(ErrorCode.INVALID_REQUEST, "GroupId can't be empty.")
    if (refused := elsewhere(context, GROUP, group_id)) is not None:
        return _answer(refused, None)
    group = context.groups.streams_group(group_id)
    if group is None:
        other = (group_id in context.groups.groups or context.groups.consumer_group(group_id) is not None
                 or group_id in context.services.share.groups)
        return _answer(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a streams group." if other else f"Group {group_id} not found.")
    description: dict[str, Any] = dict(request["topology_description"])
    return _answer(*context.groups.streams.update_description(group, request["member_id"], request["topology_epoch"], description))


def _answer(error: ErrorCode, message: str | None) -> StreamsGroupTopologyDescriptionUpdateResponse:
    return {"throttle_time_ms": 0, "error_code": error, "error_message": message}
