"""DescribeConfigs: every topic config with its value, source and synonyms (Kafka's
ConfigHelper.describeConfigs), every broker config Kafka 4.4 lists (with the dynamic ones set,
per node and as cluster defaults), the broker's loggers with their levels, and a group's
configs (`ottla.server.groups.group_configs`).

With an authorizer a resource needs DESCRIBE_CONFIGS on it (the cluster for the broker and
its loggers); the others answer their *_AUTHORIZATION_FAILED after the rest, as KafkaApis
appends them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collections.abc import Sequence
from ottla.server import broker_loggers, telemetry
from ottla.server.config_entries import BrokerEntry
from ottla.server.context import RequestContext
from ottla.server.handlers._configs import (
    BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP, TOPIC, check_authorized, client_metrics, check_broker, check_logger_broker, existing_topic, listening,
    unsupported_resource,
)
from ottla.server.security.authorizer import AclOperation
from ottla.server.topic_config import DEFAULT_CONFIG
from ottla.storage.config import ConfigKey
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        DescribeConfigsRequest,
        DescribeConfigsRequestDescribeConfigsResource,
        DescribeConfigsResponse,
        DescribeConfigsResponseDescribeConfigsResourceResult,
        DescribeConfigsResponseDescribeConfigsResult,
    )

API = ApiKey.DESCRIBE_CONFIGS
VERSIONS = (0, 4)


# Errors.INVALID_REQUEST's own message, which DescribeConfigsRequest.getErrorResponse gives.
_MALFORMED = (
    "This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker. "
    "See the broker logs for more details."
)


def handle(context: RequestContext, header: RequestHeader, request: DescribeConfigsRequest) -> DescribeConfigsResponse:
    version = header.api_version
    synonyms = request.get("include_synonyms", False)
    documentation = request.get("include_documentation", False)
    if any(resource["resource_type"] not in (TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP) for resource in request["resources"]):
        # ConfigHelper.handleDescribeConfigsRequest throws InvalidRequestException for a resource
        # type it does not know while sorting the resources by authorization, before describing
        # any: the request fails whole, every resource INVALID_REQUEST.
        return {"throttle_time_ms": 0, "results": [
            {"error_code": ErrorCode.INVALID_REQUEST, "error_message": _MALFORMED, "resource_type": resource["resource_type"],
             "resource_name": resource["resource_name"], "configs": []}
            for resource in request["resources"]
        ]}
    results: list[DescribeConfigsResponseDescribeConfigsResult] = []
    refused: list[DescribeConfigsResponseDescribeConfigsResult] = []
    for resource in request["resources"]:
        result: DescribeConfigsResponseDescribeConfigsResult = {
            "error_code": ErrorCode.NONE,
            "error_message": "",  # the generated default: ConfigHelperUtils.createResponseConfig sets none
            "resource_type": resource["resource_type"],
            "resource_name": resource["resource_name"],
            "configs": [],
        }
        try:
            check_authorized(context, AclOperation.DESCRIBE_CONFIGS, resource["resource_type"], resource["resource_name"])
        except KafkaError as exc:
            refused.append({**result, "error_code": exc.code, "error_message": exc.message})
            continue
        try:
            entries = _describe(context, resource)
        except KafkaError as exc:
            result["error_code"] = exc.code
            result["error_message"] = exc.message
        else:
            wanted = resource["configuration_keys"]
            if wanted:  # null or empty: every config (ConfigHelperUtils.createResponseConfig)
                entries = [entry for entry in entries if entry["name"] in wanted]
            for entry in entries:
                # v0 has is_default where later versions have config_source.
                entry["is_default"] = entry["config_source"] == DEFAULT_CONFIG
                if not synonyms or version == 0:
                    entry["synonyms"] = []
                if not documentation:
                    entry["documentation"] = None
            result["configs"] = entries
        results.append(result)
    return {"throttle_time_ms": 0, "results": results + refused}


def _describe(
    context: RequestContext, resource: DescribeConfigsRequestDescribeConfigsResource
) -> list[DescribeConfigsResponseDescribeConfigsResourceResult]:
    kind, name = resource["resource_type"], resource["resource_name"]
    if kind == TOPIC:
        info = existing_topic(context, name)
        return [_entry(item.key, item.value, item.source, item.synonyms) for item in context.services.broker_configs.resolve_topic(info.configs)]
    if kind == BROKER:
        check_broker(context, name)
        return [_broker_entry(entry) for entry in context.services.broker_configs.describe(name != "", listening(context))]
    if kind == BROKER_LOGGER:
        check_logger_broker(context, name)
        return [_logger_entry(logger, level) for logger, level in sorted(broker_loggers.loggers().items())]
    if kind == GROUP:
        # Any group id, existing or not, as Kafka's GroupConfigManager answers.
        return [_entry(entry.key, entry.value, entry.source, entry.synonyms) for entry in context.groups.configs.describe(name)]
    if kind == CLIENT_METRICS:
        return [_client_metrics_entry(*entry) for entry in client_metrics(context.services.telemetry.describe, name)]
    raise unsupported_resource(kind)


def _client_metrics_entry(name: str, value: str, source: int, config_type: int) -> DescribeConfigsResponseDescribeConfigsResourceResult:
    """A client metrics subscription's config (ConfigHelper.createClientMetricsConfigEntry): a
    value the subscription sets is its own one synonym, a default has none."""
    return {
        "name": name,
        "value": value,
        "read_only": False,
        "config_source": source,
        "is_sensitive": False,
        "synonyms": [] if source == DEFAULT_CONFIG else [{"name": name, "value": value, "source": source}],
        "config_type": config_type,
        "documentation": telemetry.DOCUMENTATION[name],
    }


def _broker_entry(entry: BrokerEntry) -> DescribeConfigsResponseDescribeConfigsResourceResult:
    return {
        "name": entry.name,
        "value": entry.value,
        "read_only": entry.read_only,
        "config_source": entry.source,
        "is_sensitive": entry.sensitive,
        "synonyms": [{"name": s.name, "value": s.value, "source": s.source} for s in entry.synonyms],
        "config_type": entry.config_type,
        "documentation": entry.documentation,
    }


# ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG.
_DYNAMIC_BROKER_LOGGER_CONFIG = 6


def _logger_entry(name: str, level: str) -> DescribeConfigsResponseDescribeConfigsResourceResult:
    """As Kafka's ConfigHelper gives a logger: its level, writable, no synonyms, no type."""
    return {
        "name": name,
        "value": level,
        "read_only": False,
        "config_source": _DYNAMIC_BROKER_LOGGER_CONFIG,
        "is_sensitive": False,
        "synonyms": [],
        "config_type": 0,
        "documentation": "",
    }


def _entry(
    key: ConfigKey, value: str | None, source: int, synonyms: Sequence[tuple[str, str | None, int]]
) -> DescribeConfigsResponseDescribeConfigsResourceResult:
    """One config as Kafka's ConfigHelper gives it: a sensitive value is never shown, and only
    a config that can change at run time is not read-only."""
    hidden = key.sensitive
    return {
        "name": key.name,
        "value": None if hidden else value,
        "read_only": not key.dynamic,
        "config_source": source,
        "is_sensitive": hidden,
        "synonyms": [{"name": n, "value": None if hidden else v, "source": s} for n, v, s in synonyms],
        "config_type": int(key.type),
        "documentation": key.doc,
    }
