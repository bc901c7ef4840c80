"""RemoveRaftVoter (KIP-853): refused as Kafka refuses it for a static quorum (kraft.version 0),
which Ottla's is: one voter, this node, that no request can change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import RemoveRaftVoterRequest, RemoveRaftVoterResponse

API = ApiKey.REMOVE_RAFT_VOTER
VERSIONS = (0, 0)


def check_cluster_id(context: RequestContext, cluster_id: str | None) -> None:
    """A voter change names no cluster or this one (KafkaRaftClient.hasValidClusterId)."""
    if cluster_id is not None and cluster_id != context.config.cluster_id:
        raise KafkaError(ErrorCode.INCONSISTENT_CLUSTER_ID,
                         f'The given id "{cluster_id}" doesn\'t match the cluster id "{context.config.cluster_id}"')


def static_quorum(change: str) -> KafkaError:
    """Kafka's refusal of a voter change while kraft.version is 0 (Add/RemoveVoterHandler)."""
    return KafkaError(ErrorCode.UNSUPPORTED_VERSION, f"Cluster doesn't support {change} voter because the kraft.version feature is 0")


def handle(context: RequestContext, header: RequestHeader, request: RemoveRaftVoterRequest) -> RemoveRaftVoterResponse:
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):  # ControllerApis: authorizeClusterOperation
        # RemoveRaftVoterRequest.getErrorResponse words the error by its default (Errors.message), not the exception's.
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": "Cluster authorization failed."}
    try:
        check_cluster_id(context, request["cluster_id"])
        raise static_quorum("removing")
    except KafkaError as error:
        return {"throttle_time_ms": 0, "error_code": error.code, "error_message": error.message}
