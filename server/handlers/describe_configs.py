"""DescribeConfigs: every topic config with its value, source and synonyms (Kafka's
ConfigHelper.describeConfigs), and the broker's settings from the registry."""

from __future__ import annotations

from typing import Any

from ottla.server.config import SETTINGS
from ottla.server.handlers._configs import BROKER, TOPIC, check_broker, existing_topic, unsupported_resource
from ottla.server.topic_config import DEFAULT_CONFIG, STATIC_BROKER_CONFIG, resolve
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError

API = ApiKey.DESCRIBE_CONFIGS
VERSIONS = (0, 4)


def handle(broker, header, request: dict[str, Any]) -> dict[str, Any]:
    version = header.api_version
    synonyms = request.get("include_synonyms", False)
    documentation = request.get("include_documentation", False)
    results = []
    for resource in request["resources"]:
        result: dict[str, Any] = {
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "resource_type": resource["resource_type"],
            "resource_name": resource["resource_name"],
            "configs": [],
        }
        try:
            entries = _describe(broker, resource)
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


def _describe(broker, resource: dict[str, Any]) -> list[dict[str, Any]]:
    kind, name = resource["resource_type"], resource["resource_name"]
    if kind == TOPIC:
        info = existing_topic(broker, name)
        return [
            _entry(item.key.name, item.value, item.source, False, item.synonyms, item.key.config_type, item.key.doc)
            for item in resolve(info.configs, broker.config)
        ]
    if kind == BROKER:
        check_broker(broker, name)
        if name == "":
            return []  # cluster-wide dynamic defaults: Ottla has none
        return [_broker_entry(broker.config, setting) for setting in sorted(SETTINGS.values(), key=lambda s: s.name)]
    raise unsupported_resource(kind)


def _broker_entry(config, setting) -> dict[str, Any]:
    value = _text(config[setting.name])
    default = _text(setting.default)
    synonyms = []
    if setting.name in config.explicit:
        synonyms.append((setting.name, value, STATIC_BROKER_CONFIG))
    if default is not None:
        synonyms.append((setting.name, default, DEFAULT_CONFIG))
    source = STATIC_BROKER_CONFIG if setting.name in config.explicit else DEFAULT_CONFIG
    return _entry(setting.name, value, source, True, synonyms, setting.config_type, setting.doc)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


def _entry(name, value, source, read_only, synonyms, config_type, doc) -> dict[str, Any]:
    return {
        "name": name,
        "value": value,
        "read_only": read_only,
        "config_source": source,
        "is_sensitive": False,
        "synonyms": [{"name": n, "value": v, "source": s} for n, v, s in synonyms],
        "config_type": config_type,
        "documentation": doc,
    }
