"""AddRaftVoter (KIP-853): refused as Kafka refuses it for a static quorum (kraft.version 0),
which Ottla's is: one voter, this node, that no request can change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.handlers.remove_raft_voter import check_cluster_id, static_quorum
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import AddRaftVoterRequest, AddRaftVoterResponse

API = ApiKey.ADD_RAFT_VOTER
VERSIONS = (0, 1)


def handle(context: RequestContext, header: RequestHeader, request: AddRaftVoterRequest) -> AddRaftVoterResponse:
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):  # ControllerApis: authorizeClusterOperation
        # AddRaftVoterRequest.getErrorResponse words the error by its default (Errors.message), not the exception's.
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": "Cluster authorization failed."}
    try:
        check_cluster_id(context, request["cluster_id"])
        # KafkaRaftClient.handleAddVoterRequest checks the new voter's endpoints before its handler
        # looks at kraft.version.
        listener = context.client.listener
        if not any(endpoint["name"] == listener for endpoint in request["listeners"]):
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Add voter request didn't include the endpoint for the default listener {listener}")
        raise static_quorum("adding")
    except KafkaError as error:
        return {"throttle_time_ms": 0, "error_code": error.code, "error_message": error.message}
