"""AlterClientQuotas (KIP-546): set and remove quota keys per entity, judged per entry as Kafka
4.4's ClientQuotaControlManager judges them (an unknown entity type or key, an IP combined
with a user or client id, a fractional byte rate: INVALID_REQUEST for that entry only). The
entries that pass are applied together and written once; `validate_only` applies none."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.security.quotas import Entity, QuotaError, check_value, make_entity
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import AlterClientQuotasRequest, AlterClientQuotasResponse, AlterClientQuotasResponseEntryData

API = ApiKey.ALTER_CLIENT_QUOTAS
VERSIONS = (0, 1)


def handle(context: RequestContext, header: RequestHeader, request: AlterClientQuotasRequest) -> AlterClientQuotasResponse:
    allowed = context.authorize(AclOperation.ALTER_CONFIGS, ResourceType.CLUSTER, CLUSTER_NAME)
    results: list[AlterClientQuotasResponseEntryData] = []
    changes: list[tuple[Entity, dict[str, float | None]]] = []
    for entry in request["entries"]:
        result: AlterClientQuotasResponseEntryData = {"error_code": ErrorCode.NONE, "error_message": None, "entity": entry["entity"]}
        results.append(result)
        if not allowed:
            result["error_code"], result["error_message"] = ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed."
            continue
        try:
            entity = make_entity((part["entity_type"], part["entity_name"]) for part in entry["entity"])
            values: dict[str, float | None] = {}
            for op in entry["ops"]:
                if op["remove"]:
                    check_value(entity, op["key"], 1.0)  # the key must still be one the entity can have
                    values[op["key"]] = None
                else:
                    check_value(entity, op["key"], op["value"])
                    values[op["key"]] = op["value"]
        except QuotaError as exc:
            result["error_code"], result["error_message"] = exc.code, exc.message
            continue
        changes.append((entity, values))
    if changes and not request["validate_only"]:
        context.services.quotas.alter(changes)
    return {"throttle_time_ms": 0, "entries": results}
