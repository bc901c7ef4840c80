"""UnregisterController: Kafka removes a controller's registration, refusing to remove the
active controller's own. Ottla's quorum is one controller, always active (this node alone, in
a cluster the one DescribeCluster and DescribeQuorum name, whichever node is asked): its id
is refused as Kafka 4.4 refuses it (INVALID_REQUEST), any other id is UNSUPPORTED_VERSION
below metadata.version 4.4-IV2 (ClusterControlManager.unregisterController) and else not
registered (a single-node Kafka 4.4 answers all three so, on its broker listener too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.features import CONTROLLER_UNREGISTRATION_LEVEL
from ottla.server.handlers.describe_quorum import controller_id as active_controller
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.security.refusals import needs_permission
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import UnregisterControllerRequest, UnregisterControllerResponse

API = ApiKey.UNREGISTER_CONTROLLER
VERSIONS = (0, 0)


def handle(context: RequestContext, header: RequestHeader, request: UnregisterControllerRequest) -> UnregisterControllerResponse:
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):  # ControllerApis: authorizeClusterOperation
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": needs_permission(context, AclOperation.ALTER)}
    controller_id = request["controller_id"]
    if controller_id == active_controller(context):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.INVALID_REQUEST,
                "error_message": "Controller cannot unregister itself while it is active."}
    if context.services.features.level("metadata.version") < CONTROLLER_UNREGISTRATION_LEVEL:
        return {"throttle_time_ms": 0, "error_code": ErrorCode.UNSUPPORTED_VERSION,
                "error_message": "The current MetadataVersion is too old to support controller unregistration."}
    return {"throttle_time_ms": 0, "error_code": ErrorCode.CONTROLLER_ID_NOT_REGISTERED,
            "error_message": f"Controller ID {controller_id} is not currently registered."}
