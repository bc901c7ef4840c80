"""DescribeClientQuotas (KIP-546): the quotas of the entities a filter matches, as Kafka 4.4's
ClientQuotasImage.describe answers. A component matches an exact name (0), the default (1)
or any name (2) of its entity type; a strict filter also leaves out entities with types it
does not name. A malformed filter is the whole answer's error, with no entries, checked in
Kafka's order (empty type, repeated type, unknown type, then the match).

Messages: a success has the generated default "" (ClientQuotasImage.describe sets none); an
error is DescribeClientQuotasRequest.getErrorResponse's ApiError.fromThrowable, which drops a
message equal to the error's default words (null for a refused principal)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.java_hashing import copied_capacity, default_capacity, java_order, string_hash
from ottla.server.security.quotas import (
    CLIENT_ID, ENTITY_TYPES, IP, USER, Entity, FilterComponent, QuotaError, entity_hash, entity_matches,
)
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import DescribeClientQuotasRequest, DescribeClientQuotasResponse, DescribeClientQuotasResponseEntryData

API = ApiKey.DESCRIBE_CLIENT_QUOTAS
VERSIONS = (0, 1)

_EXACT, _DEFAULT, _SPECIFIED = 0, 1, 2


def handle(context: RequestContext, header: RequestHeader, request: DescribeClientQuotasRequest) -> DescribeClientQuotasResponse:
    if not context.authorize(AclOperation.DESCRIBE_CONFIGS, ResourceType.CLUSTER, CLUSTER_NAME):
        return _error(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, None)
    try:
        components = _components(request)
    except QuotaError as exc:
        return _error(exc.code, exc.message)
    entries: list[DescribeClientQuotasResponseEntryData] = [
        {
            "entity": [{"entity_type": entity_type, "entity_name": name} for entity_type, name in entity],
            "values": [{"key": key, "value": value} for key, value in sorted(values.items())],
        }
        for entity, values in _kafka_order(context.services.quotas.entities(), components)
        if entity_matches(entity, components, request["strict"])
    ]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": "", "entries": entries}


def _kafka_order(image: Mapping[Entity, Mapping[str, float]], components: list[FilterComponent]) -> list[tuple[Entity, Mapping[str, float]]]:
    """The entities in the order ClientQuotasImage.describe answers them: with no component,
    the image's own order; else a `new HashMap<>(...)` copy of its index of the entities with
    the first exact component's name (in the order a HashMap of types walks them), or, with
    none exact, of the first "any" component's type. Each index is a HashMap filled in image
    order; the other components only remove entries, keeping the order."""
    if not components:
        return list(image.items())
    exact = [component for component in components if component.exact]
    first = java_order(exact or components, lambda component: string_hash(component.entity_type), default_capacity(len(components)))[0]
    indexed = [entity for entity in image if any(kind == first.entity_type and (not exact or name == first.match) for kind, name in entity)]
    indexed = java_order(indexed, entity_hash, default_capacity(len(indexed)))
    return [(entity, image[entity]) for entity in java_order(indexed, entity_hash, copied_capacity(len(indexed)))]


def _components(request: DescribeClientQuotasRequest) -> list[FilterComponent]:
    components: list[FilterComponent] = []
    for component in request["components"]:
        entity_type, match_type, match = component["entity_type"], component["match_type"], component["match"]
        if not entity_type:
            raise QuotaError(ErrorCode.INVALID_REQUEST, "Invalid empty entity type.")
        if any(known.entity_type == entity_type for known in components):
            raise QuotaError(ErrorCode.INVALID_REQUEST, f"Entity type {entity_type} cannot appear more than once in the filter.")
        if entity_type not in ENTITY_TYPES:
            raise QuotaError(ErrorCode.UNSUPPORTED_VERSION, f"Unsupported entity type {entity_type}")
        if match_type == _EXACT:
            if match is None:
                raise QuotaError(ErrorCode.INVALID_REQUEST, "Request specified MATCH_TYPE_EXACT, but set match string to null.")
            components.append(FilterComponent(entity_type, match, exact=True))
        elif match_type in (_DEFAULT, _SPECIFIED):
            if match is not None:
                name = "MATCH_TYPE_DEFAULT" if match_type == _DEFAULT else "MATCH_TYPE_SPECIFIED"
                raise QuotaError(ErrorCode.INVALID_REQUEST, f"Request specified {name}, but also specified a match string.")
            components.append(FilterComponent(entity_type, None, exact=match_type == _DEFAULT))
        else:
            raise QuotaError(ErrorCode.INVALID_REQUEST, f"Unknown match type {match_type}")
    types = {component.entity_type for component in components}
    if IP in types and types & {USER, CLIENT_ID}:
        raise QuotaError(
            ErrorCode.INVALID_REQUEST,
            "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.",
        )
    return components


def _error(code: ErrorCode, message: str | None) -> DescribeClientQuotasResponse:
    return {"throttle_time_ms": 0, "error_code": code, "error_message": message, "entries": None}
