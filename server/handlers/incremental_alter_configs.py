"""IncrementalAlterConfigs (KIP-339): SET, DELETE, APPEND and SUBTRACT on single configs,
the rest of the topic's overrides untouched (Kafka's ConfigAdminManager.prepareIncrementalConfigs)."""

from __future__ import annotations

from ottla.server.context import RequestContext
from ottla.server.handlers._configs import BROKER, TOPIC, alter_result, check_unique, existing_topic, refuse_broker_change, replace_topic_configs, unsupported_resource
from ottla.server.topic_config import broker_default
from ottla.storage.config import TOPIC_KEYS, ConfigType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader
from ottla.wire.messages.types import (
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsRequestAlterableConfig,
    IncrementalAlterConfigsResponse,
)

API = ApiKey.INCREMENTAL_ALTER_CONFIGS
VERSIONS = (0, 1)

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
_OPERATION_NAMES = {APPEND: "APPEND", SUBTRACT: "SUBTRACT"}


def handle(context: RequestContext, header: RequestHeader, request: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse:
    responses = []
    for resource in request["resources"]:
        error = None
        try:
            check_unique([config["name"] for config in resource["configs"]])
            kind = resource["resource_type"]
            if kind == TOPIC:
                info = existing_topic(context, resource["resource_name"])
                overrides = _apply(context, dict(info.configs), resource["configs"])
                touched = {operation["name"] for operation in resource["configs"]}
                changed = {k: v for k, v in overrides.items() if k in touched}
                unchanged = {k: v for k, v in info.configs.items() if k not in touched}
                replace_topic_configs(context, info.name, changed, request["validate_only"], unchanged)
            elif kind == BROKER:
                refuse_broker_change(context, resource["resource_name"], [config["name"] for config in resource["configs"]])
            else:
                raise unsupported_resource(kind)
        except KafkaError as exc:
            error = exc
        responses.append(alter_result(resource, error))
    return {"throttle_time_ms": 0, "responses": responses}


def _apply(
    context: RequestContext, overrides: dict[str, str], operations: list[IncrementalAlterConfigsRequestAlterableConfig]
) -> dict[str, str | None]:
    result: dict[str, str | None] = dict(overrides)
    for operation in operations:
        name, op, value = operation["name"], operation["config_operation"], operation["value"]
        key = TOPIC_KEYS.get(name)
        if key is None:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Unknown topic config name: {name}")
        if op == SET:
            result[name] = value
        elif op == DELETE:
            result.pop(name, None)
        elif op in (APPEND, SUBTRACT):
            if key.type != ConfigType.LIST:
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"Can't {_OPERATION_NAMES[op]} to key {name} because its type is not LIST.")
            current = result.get(name)
            if current is None:
                current = broker_default(key, context.config)[0]
            items = [item for item in current.split(",") if item]
            given = [item.strip() for item in (value or "").split(",") if item.strip()]
            if op == APPEND:
                items += [item for item in given if item not in items]
            else:
                items = [item for item in items if item not in given]
            result[name] = ",".join(items)
        else:
            # Kafka answers an unknown operation with UNKNOWN_SERVER_ERROR (OpType.forId gives
            # null); INVALID_REQUEST says what is wrong.
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unknown config operation {op} for {name}")
    return result
