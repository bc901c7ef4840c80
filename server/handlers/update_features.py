"""UpdateFeatures (KIP-584): finalize feature levels within what this broker supports, all
of a request's updates or none, as Kafka's controller does (FeatureControlManager)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.security.refusals import needs_permission
from ottla.server.features import UpgradeType
from ottla.server.handlers.describe_quorum import controller_id as active_controller
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import UpdateFeaturesRequest, UpdateFeaturesResponse, UpdateFeaturesResponseUpdatableFeatureResult

API = ApiKey.UPDATE_FEATURES
ELR = "eligible.leader.replicas.version"
VERSIONS = (0, 2)


def handle(context: RequestContext, header: RequestHeader, request: UpdateFeaturesRequest) -> UpdateFeaturesResponse:
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):  # ControllerApis: authorizeClusterOperation
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": needs_permission(context, AclOperation.ALTER),
                "results": []}
    updates = []
    for update in request["feature_updates"]:
        if header.api_version == 0:  # v0's AllowDowngrade became v1's UpgradeType
            upgrade_type = UpgradeType.SAFE_DOWNGRADE if update.get("allow_downgrade") else UpgradeType.UPGRADE
        else:
            upgrade_type = _upgrade_type(update.get("upgrade_type", UpgradeType.UPGRADE))
        updates.append((update["feature"], update["max_version_level"], upgrade_type))
    validate_only = request.get("validate_only", False)
    try:
        # The broker forwards the request to the active controller, whose FeatureControlManager names itself.
        context.services.features.update(updates, validate_only, active_controller(context))
    except KafkaError as error:
        # v0-1 list no per-feature results when the whole update failed.
        return {"throttle_time_ms": 0, "error_code": error.code, "error_message": error.message, "results": []}
    # ConfigurationControlManager.updateFeatures: any update asking for ELR on (raising it or
    # not) makes min.insync.replicas the cluster's alone; a feature named twice takes its last level.
    elr = [level for name, level, _ in updates if name == ELR]
    if not validate_only and elr and elr[-1] > 0:
        context.services.broker_configs.keep_min_insync_replicas()
    # Kafka 4 words success per feature as the error's name.
    results: list[UpdateFeaturesResponseUpdatableFeatureResult] = [
        {"feature": update["feature"], "error_code": ErrorCode.NONE, "error_message": ErrorCode.NONE.name} for update in request["feature_updates"]
    ]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "results": results}


def _upgrade_type(raw: int) -> UpgradeType:
    try:
        return UpgradeType(raw)
    except ValueError:
        return UpgradeType.UNKNOWN
