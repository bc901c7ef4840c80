"""DescribeConfigs: every topic config with its value, source and synonyms (Kafka's
ConfigHelper.describeConfigs), and the broker's settings from the registry."""

from __future__ import annotations

from collections.abc import Sequence
from ottla.server.context import RequestContext
from ottla.server.config import SETTINGS, BrokerConfig
from ottla.server.handlers._configs import BROKER, TOPIC, check_broker, existing_topic, unsupported_resource
from ottla.server.topic_config import DEFAULT_CONFIG, STATIC_BROKER_CONFIG, resolve
from ottla.storage.config import ConfigKey
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader
from ottla.wire.messages.types import (
    DescribeConfigsRequest,
    DescribeConfigsRequestDescribeConfigsResource,
    DescribeConfigsResponse,
    DescribeConfigsResponseDescribeConfigsResourceResult,
    DescribeConfigsResponseDescribeConfigsResult,
)

API = ApiKey.DESCRIBE_CONFIGS
VERSIONS = (0, 4)


def handle(context: RequestContext, header: RequestHeader, request: DescribeConfigsRequest) -> DescribeConfigsResponse:
    version = header.api_version
    synonyms = request.get("include_synonyms", False)
    documentation = request.get("include_documentation", False)
    results: list[DescribeConfigsResponseDescribeConfigsResult] = []
    for resource in request["resources"]:
        result: DescribeConfigsResponseDescribeConfigsResult = {
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "resource_type": resource["resource_type"],
            "resource_name": resource["resource_name"],
            "configs": [],
        }
        try:
            entries = _describe(context, resource)
        except KafkaError as exc:
            result["error_code"] = exc.code
            result["error_message"] = exc.message
        else:
            wanted = resource["configuration_keys"]
            if wanted is not None:
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
    return {"throttle_time_ms": 0, "results": results}


def _describe(
    context: RequestContext, resource: DescribeConfigsRequestDescribeConfigsResource
) -> list[DescribeConfigsResponseDescribeConfigsResourceResult]:
    kind, name = resource["resource_type"], resource["resource_name"]
    if kind == TOPIC:
        info = existing_topic(context, name)
        return [_entry(item.key, item.value, item.source, item.synonyms) for item in resolve(info.configs, context.config)]
    if kind == BROKER:
        check_broker(context, name)
        if name == "":
            return []  # cluster-wide dynamic defaults: Ottla has none
        return [_broker_entry(context.config, key) for key in sorted(SETTINGS.values(), key=lambda key: key.name)]
    raise unsupported_resource(kind)


def _broker_entry(config: BrokerConfig, key: ConfigKey) -> DescribeConfigsResponseDescribeConfigsResourceResult:
    value = key.render(config.value(key.name))
    default = key.render(key.default)
    synonyms: list[tuple[str, str | None, int]] = []
    if key.name in config.explicit:
        synonyms.append((key.name, value, STATIC_BROKER_CONFIG))
    if default is not None:
        synonyms.append((key.name, default, DEFAULT_CONFIG))
    source = STATIC_BROKER_CONFIG if key.name in config.explicit else DEFAULT_CONFIG
    return _entry(key, value, source, synonyms)


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
