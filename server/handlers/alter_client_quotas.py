"""AlterClientQuotas (KIP-546): set and remove quota keys per entity, judged per entity as Kafka
4.4's ClientQuotaControlManager.alterClientQuotas judges them.

An entity is the map of its entry's (type, name) pairs, a type named twice keeping its last
name, taken in the order Kafka's java.util.HashMap of them iterates (`_entity_map`): that order
picks which invalid pair an entity is refused for, and lists the pairs in the answer and in a
duplicate's message. Each entity gets one answer: INVALID_REQUEST for an invalid entity or value
(an unknown type or key, an empty name, an IP combined with a user or client id, a byte rate
that is fractional or too large for a LONG), and nothing of that entry applies; its keys are
judged in the order Kafka's HashMap of them iterates, which picks the invalid key named. A key set twice
in one entry, or an entity in a second entry, answers INVALID_REQUEST "Ignoring duplicate
entity", as Kafka does; what a first valid entry of that entity set still applies. A removal is
never judged: it removes the key if set. The entries that pass are applied together and written
once; `validate_only` applies none.

An IP entity may name a host: accepted when it resolves (ClientQuotaControlManager.isValidIpEntity
asks InetAddress.getByName), kept as named, its quota applied to the address it resolved to.
Kafka resolves on its controller thread; here the request waits for the names to resolve off
the event loop, and a request naming none is answered at once."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ottla.server.context import RequestContext
from ottla.server.java_hashing import java_order, string_hash, table_size_for
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.security.quotas import IP, Entity, QuotaError, check_value, ip_address_of, make_entity, resolve_host
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        AlterClientQuotasRequest,
        AlterClientQuotasRequestEntityData,
        AlterClientQuotasResponse,
        AlterClientQuotasResponseEntryData,
    )

API = ApiKey.ALTER_CLIENT_QUOTAS
VERSIONS = (0, 1)


def handle(
    context: RequestContext, header: RequestHeader, request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse | Coroutine[Any, Any, AlterClientQuotasResponse]:
    if not context.authorize(AclOperation.ALTER_CONFIGS, ResourceType.CLUSTER, CLUSTER_NAME):
        # AlterClientQuotasRequest.getErrorResponse: every entry as asked.
        refused: list[AlterClientQuotasResponseEntryData] = [
            {"error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": "Cluster authorization failed.", "entity": entry["entity"]}
            for entry in request["entries"]
        ]
        return {"throttle_time_ms": 0, "entries": refused}
    hosts = _host_names(request)
    if hosts:
        return _resolving(context, request, hosts)
    return _alter(context, request, {})


def _entity_map(parts: list[AlterClientQuotasRequestEntityData]) -> dict[str, str | None]:
    """An entry's (type, name) pairs in the order AlterClientQuotasRequest.entries()'s map
    iterates them: a `new HashMap<>(parts.size())`, whose table starts at the power of two
    holding that many pairs and doubles once more than three quarters full, put in request order."""
    named = {part["entity_type"]: part["entity_name"] for part in parts}
    return {entity_type: named[entity_type] for entity_type in _sized_map_order(list(named), len(parts))}


def _sized_map_order(keys: list[str], size: int) -> list[str]:
    """Distinct String `keys`, put in this order, as a `new HashMap<>(size)` iterates them."""
    capacity = table_size_for(size)
    while len(keys) > capacity * 3 // 4:
        capacity *= 2
    return java_order(keys, string_hash, capacity)


def _host_names(request: AlterClientQuotasRequest) -> list[str]:
    """The host names the request's IP entities are named by (not addresses), each once."""
    hosts: dict[str, None] = {}
    for entry in request["entries"]:
        named = {part["entity_type"]: part["entity_name"] for part in entry["entity"]}
        name = named.get(IP)
        if len(named) == 1 and name and ip_address_of(name) is None:
            hosts[name] = None
    return list(hosts)


async def _resolving(context: RequestContext, request: AlterClientQuotasRequest, hosts: list[str]) -> AlterClientQuotasResponse:
    found = await asyncio.gather(*(resolve_host(name) for name in hosts))
    return _alter(context, request, {name: address for name, address in zip(hosts, found) if address is not None})


def _alter(context: RequestContext, request: AlterClientQuotasRequest, addresses: dict[str, str]) -> AlterClientQuotasResponse:
    """Judge and apply the entries, `addresses` holding what their host names resolved to."""
    # Each entity as the request's map has it (in first-seen order of entities), and its answer.
    results: dict[tuple[tuple[str, str | None], ...], AlterClientQuotasResponseEntryData] = {}
    changes: dict[tuple[tuple[str, str | None], ...], tuple[Entity, dict[str, float | None]]] = {}
    for entry in request["entries"]:
        named = _entity_map(entry["entity"])
        key = tuple(sorted(named.items(), key=lambda pair: pair[0]))
        values: dict[str, float | None] = {}
        repeated_key = False
        for op in entry["ops"]:
            repeated_key = repeated_key or op["key"] in values
            values.setdefault(op["key"], None if op["remove"] else op["value"])
        result: AlterClientQuotasResponseEntryData = {
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "entity": [{"entity_type": entity_type, "entity_name": name} for entity_type, name in named.items()],
        }
        if repeated_key or key in results:
            # ClientQuotaEntity.toString prints its Java map: a default (null) name as "null".
            shown = ", ".join(f"{entity_type}={'null' if name is None else name}" for entity_type, name in named.items())
            result["error_code"], result["error_message"] = ErrorCode.INVALID_REQUEST, f"Ignoring duplicate entity ClientQuotaEntity(entries={{{shown}}})"
            results.setdefault(key, result).update(result)
            continue
        results[key] = result
        try:
            entity = make_entity(named.items(), addresses)
            # ClientQuotaControlManager judges the keys as its `new HashMap<>(ops.size())` of them iterates.
            for quota_key in _sized_map_order(list(values), len(entry["ops"])):
                if (value := values[quota_key]) is not None:
                    check_value(entity, quota_key, value)
        except QuotaError as exc:
            result["error_code"], result["error_message"] = exc.code, exc.message
            continue
        changes[key] = (entity, values)
    if changes and not request["validate_only"]:
        context.services.quotas.alter(changes.values(), addresses)
    return {"throttle_time_ms": 0, "entries": list(results.values())}
