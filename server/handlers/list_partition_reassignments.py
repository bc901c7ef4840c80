"""ListPartitionReassignments (KIP-455): a single node never moves a replica, so no
reassignment is ever in progress; Kafka leaves unknown topics out of the answer too."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse

API = ApiKey.LIST_PARTITION_REASSIGNMENTS
VERSIONS = (0, 0)


def handle(context: RequestContext, header: RequestHeader, request: ListPartitionReassignmentsRequest) -> ListPartitionReassignmentsResponse:
    if not context.authorize(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME):  # ControllerApis: authorizeClusterOperation
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": "Request is not authorized.", "topics": []}
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "topics": []}
