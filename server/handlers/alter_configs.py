"""AlterConfigs (the legacy, non-incremental form): the given set replaces all of a topic's
overrides, all of a node's (or the cluster default's) dynamic broker configs, a group's or a
client metrics subscription's, as in Kafka (ConfigurationControlManager.legacyAlterConfigResource),
where any config left out returns to its default. Kafka does not take BROKER_LOGGER here.
With an authorizer a resource needs ALTER_CONFIGS on it (the cluster for the broker), checked
after ConfigAdminManager.preprocess's checks: every resource named at most once, its config
names distinct, its type one Kafka alters here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ottla.server import broker_configs
from ottla.server.context import RequestContext
from ottla.server.handlers._configs import (
    BROKER, CLIENT_METRICS, GROUP, TOPIC, altered_broker, alter_result, check_authorized, check_preprocessed, check_topic_resource, client_metrics,
    repeated_resource, repeated_resources, replace_broker_configs, replace_topic_configs, stored_after, unknown_resource,
)
from ottla.server.security.authorizer import AclOperation
from ottla.wire.api import ApiKey
from ottla.wire.errors import KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        AlterConfigsRequest,
        AlterConfigsResponse,
        AlterConfigsResponseAlterConfigsResourceResponse,
    )

API = ApiKey.ALTER_CONFIGS
VERSIONS = (0, 2)

# The types ConfigAdminManager.preprocess lets through to authorization; any other, BROKER_LOGGER
# too, is INVALID_REQUEST "Unknown resource type N" whatever the principal may do.
_ALTERABLE = frozenset((TOPIC, BROKER, CLIENT_METRICS, GROUP))


def handle(
    context: RequestContext, header: RequestHeader, request: AlterConfigsRequest
) -> AlterConfigsResponse | Coroutine[Any, Any, AlterConfigsResponse]:
    responses: list[AlterConfigsResponseAlterConfigsResourceResponse] = []
    # Topics of an async engine (PostgreSQL): their stores, awaited after this loop.
    pending: list[tuple[AlterConfigsResponseAlterConfigsResourceResponse, Callable[[], Awaitable[object]]]] = []
    repeated = repeated_resources(request["resources"])
    for resource in request["resources"]:
        error = None
        stored = None
        try:
            if (resource["resource_type"], resource["resource_name"]) in repeated:
                raise repeated_resource()
            check_preprocessed([config["name"] for config in resource["configs"]], [config["name"] for config in resource["configs"] if config["value"] is None])
            kind = resource["resource_type"]
            if kind not in _ALTERABLE:
                raise unknown_resource(kind)
            check_authorized(context, AclOperation.ALTER_CONFIGS, kind, resource["resource_name"])
            given = {config["name"]: config["value"] for config in resource["configs"]}
            if kind == TOPIC:
                check_topic_resource(resource["resource_name"], altering=True)
                stored = replace_topic_configs(context, resource["resource_name"], given, request["validate_only"])
            elif kind == BROKER:
                per_broker = altered_broker(context, resource["resource_name"], kind)
                configs = broker_configs.check(given, per_broker)
                # The controller writes every given config of a broker resource, and a removal of each stored one left out.
                removed = context.services.broker_configs.dynamic(per_broker).keys() - configs.keys()
                replace_broker_configs(context, per_broker, configs, request["validate_only"], configs.keys() | removed, removed)
            elif kind == GROUP:
                context.groups.configs.replace(resource["resource_name"], given, request["validate_only"])
            else:
                # CLIENT_METRICS: every stored config left out is removed, as for any resource.
                name = resource["resource_name"]
                removed_metrics: dict[str, str | None] = {key: None for key in context.services.telemetry.configs(name) if key not in given}
                client_metrics(context.services.telemetry.alter, name, {**removed_metrics, **given}, request["validate_only"])
        except KafkaError as exc:
            error = exc
        responses.append(alter_result(resource, error))
        if stored is not None:
            pending.append((responses[-1], stored))
    return stored_after({"throttle_time_ms": 0, "responses": responses}, pending)
