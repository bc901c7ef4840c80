"""IncrementalAlterConfigs (KIP-339): SET, DELETE, APPEND and SUBTRACT on single configs,
the rest of the resource's configs untouched (Kafka's ConfigAdminManager.prepareIncrementalConfigs):
a topic's overrides, a node's or the cluster's dynamic broker configs, a broker logger's level,
a group's configs, a client metrics subscription's (KIP-714).
With an authorizer a resource needs ALTER_CONFIGS on it (the cluster for the broker and its
loggers), checked after ConfigAdminManager.preprocess's checks: every resource named at most
once, its config names distinct, a value on every operation but DELETE."""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any, Callable

from ottla.server import broker_configs, broker_loggers
from ottla.server.context import RequestContext
from ottla.server.handlers._configs import (
    BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP, TOPIC, altered_broker, alter_result, check_authorized, check_preprocessed,
    check_topic_resource, client_metrics, repeated_resource, repeated_resources, replace_broker_configs, replace_topic_configs, stored_after,
    unknown_resource,
)
from ottla.server.java_hashing import default_capacity, java_order, string_hash
from ottla.server.security.authorizer import AclOperation
from ottla.storage.config import TOPIC_KEYS, ConfigType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsRequestAlterableConfig,
        IncrementalAlterConfigsResponse,
    )

API = ApiKey.INCREMENTAL_ALTER_CONFIGS
VERSIONS = (0, 1)

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
_OPERATION_NAMES = {APPEND: "APPEND", SUBTRACT: "SUBTRACT"}


def handle(
    context: RequestContext, header: RequestHeader, request: IncrementalAlterConfigsRequest
) -> IncrementalAlterConfigsResponse | Coroutine[Any, Any, IncrementalAlterConfigsResponse]:
    responses = []
    # Topics of an async engine (PostgreSQL): their stores, awaited after this loop.
    pending: list[tuple[Any, Callable[[], Awaitable[object]]]] = []
    repeated = repeated_resources(request["resources"])
    for resource in request["resources"]:
        error = None
        stored = None
        try:
            if (resource["resource_type"], resource["resource_name"]) in repeated:
                raise repeated_resource()
            configs = resource["configs"]
            check_preprocessed([config["name"] for config in configs],
                               [config["name"] for config in configs if config["config_operation"] != DELETE and config["value"] is None])
            check_authorized(context, AclOperation.ALTER_CONFIGS, resource["resource_type"], resource["resource_name"])
            kind = resource["resource_type"]
            if kind == TOPIC:
                # The controller's order (ConfigurationControlManager.incrementalAlterConfigResource):
                # the operations applied (a missing topic's to no overrides), then the resource's
                # name and the resulting values judged (ControllerConfigurationValidator), then
                # whether the topic exists (replace_topic_configs).
                name = resource["resource_name"]
                info = context.storage.topic(name)
                current = {} if info is None else dict(info.configs)
                overrides = _apply(dict(current), resource["configs"])
                check_topic_resource(name, altering=True)
                touched = {operation["name"] for operation in resource["configs"]}
                changed = {k: v for k, v in overrides.items() if k in touched}
                unchanged = {k: v for k, v in current.items() if k not in touched}
                stored = replace_topic_configs(context, name, changed, request["validate_only"], unchanged)
            elif kind == BROKER:
                per_broker = altered_broker(context, resource["resource_name"], kind)
                _alter_broker(context, per_broker, resource["configs"], request["validate_only"])
            elif kind == BROKER_LOGGER:
                altered_broker(context, resource["resource_name"], kind)
                _alter_loggers(resource["configs"], request["validate_only"])
            elif kind == GROUP:
                _alter_group(context, resource["resource_name"], resource["configs"], request["validate_only"])
            elif kind == CLIENT_METRICS:
                operations = [(config["name"], config["config_operation"], config["value"]) for config in resource["configs"]]
                client_metrics(context.services.telemetry.apply, resource["resource_name"], operations, request["validate_only"])
            else:
                raise unknown_resource(kind)
        except KafkaError as exc:
            error = exc
        responses.append(alter_result(resource, error))
        if stored is not None:
            pending.append((responses[-1], stored))
    return stored_after({"throttle_time_ms": 0, "responses": responses}, pending)


def _apply(overrides: dict[str, str], operations: list[IncrementalAlterConfigsRequestAlterableConfig]) -> dict[str, str | None]:
    """A topic's overrides after the operations; APPEND and SUBTRACT start from the key's own
    default when it has no override, not from the broker's log.* value: Kafka 4.4's controller
    (ConfigurationControlManager.getParts) takes KafkaConfigSchema.getDefault, the topic
    ConfigDef's static default. Names are judged afterwards, on what is left set: deleting an
    unknown name is no error, and APPEND or SUBTRACT on one is refused as on a key that is not a list."""
    result: dict[str, str | None] = dict(overrides)

    def current_items(name: str, op: int) -> list[str]:
        key = TOPIC_KEYS.get(name)
        if key is None or key.type != ConfigType.LIST:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Can't {_OPERATION_NAMES[op]} to key {name} because its type is not LIST.")
        current = result.get(name)
        if current is None:
            current = key.render(key.default) or ""
        return [item for item in current.split(",") if item]

    return _operate(result, _controller_order(operations), current_items)


def _controller_order(operations: list[IncrementalAlterConfigsRequestAlterableConfig]) -> list[IncrementalAlterConfigsRequestAlterableConfig]:
    """A resource's operations in the order Kafka 4.4's controller applies them, answering the
    first refusal: ControllerApis puts them in a java.util.HashMap by name (the names are
    distinct, as preprocessing checked), which ConfigurationControlManager walks."""
    return java_order(operations, lambda operation: string_hash(operation["name"]), default_capacity(len(operations)))


def _alter_broker(
    context: RequestContext, per_broker: bool, operations: list[IncrementalAlterConfigsRequestAlterableConfig], validate_only: bool
) -> None:
    """Apply the operations to one scope's dynamic broker configs. APPEND and SUBTRACT start
    from that scope's own dynamic value, else from the key's static default: neither the
    static setting nor the cluster default under a node's scope, as Kafka 4.4's
    ConfigAdminManager.prepareIncrementalConfigs (on the resource's persistent props) and the
    controller's ConfigurationControlManager.getParts do."""
    store = context.services.broker_configs
    configs: dict[str, str | None] = dict(store.dynamic(per_broker))

    def current_items(name: str, op: int) -> list[str]:
        key = broker_configs.described_keys().get(name)
        if key is None or key.type != ConfigType.LIST:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Config value {_OPERATION_NAMES[op].lower()} is not allowed for config key: {name}")
        current = configs[name] if name in configs else key.render(key.default)
        return [item for item in (current or "").split(",") if item]

    _operate(configs, operations, current_items)
    touched = {operation["name"] for operation in operations}
    broker_configs.check_read_only(touched)
    changed = broker_configs.check({name: value for name, value in configs.items() if name in touched}, per_broker)
    unchanged = {name: value for name, value in configs.items() if name not in touched and value is not None}
    # The controller writes a record of every operation on a broker resource, DELETE's removing.
    removed = {operation["name"] for operation in operations if operation["config_operation"] == DELETE}
    replace_broker_configs(context, per_broker, {**unchanged, **changed}, validate_only, touched, removed)


def _alter_group(
    context: RequestContext, group_id: str, operations: list[IncrementalAlterConfigsRequestAlterableConfig], validate_only: bool
) -> None:
    """Apply the operations to one group's overrides. APPEND and SUBTRACT are refused on
    every name, known or not, the one LIST group config (streams.rack.aware.assignment.tags)
    too: Kafka 4.4's controller does not know group configs as lists (a reference Kafka 4.4
    answers INVALID_CONFIG, "Can't APPEND to key ... because its type is not LIST."), before
    it judges the names."""
    store = context.groups.configs
    configs: dict[str, str | None] = dict(store.overrides.get(group_id, {}))

    def current_items(name: str, op: int) -> list[str]:
        raise KafkaError(ErrorCode.INVALID_CONFIG, f"Can't {_OPERATION_NAMES[op]} to key {name} because its type is not LIST.")

    store.replace(group_id, _operate(configs, _controller_order(operations), current_items), validate_only)


def _operate(
    configs: dict[str, str | None],
    operations: list[IncrementalAlterConfigsRequestAlterableConfig],
    current_items: Callable[[str, int], list[str]],
) -> dict[str, str | None]:
    """`configs`, changed in place by the operations in order: SET and DELETE as given; APPEND
    and SUBTRACT on the items `current_items(name, op)` gives (it refuses a key that is not a
    list), the given items trimmed and each added once."""
    for operation in operations:
        name, op, value = operation["name"], operation["config_operation"], operation["value"]
        if op == SET:
            configs[name] = value
        elif op == DELETE:
            configs.pop(name, None)
        elif op in (APPEND, SUBTRACT):
            items = current_items(name, op)
            given = [item.strip() for item in (value or "").split(",") if item.strip()]
            if op == APPEND:
                items += [item for item in given if item not in items]
            else:
                items = [item for item in items if item not in given]
            configs[name] = ",".join(items)
        else:
            # ConfigAdminManager.validateBrokerConfigChange's words for an OpType.forId of null.
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unknown operations type {op}")
    return configs


def _alter_loggers(operations: list[IncrementalAlterConfigsRequestAlterableConfig], validate_only: bool) -> None:
    """Every operation is checked before any level changes, as Kafka validates the resource whole."""
    for operation in operations:
        name, op = operation["name"], operation["config_operation"]
        if op == SET:
            broker_loggers.check_level(name, operation["value"])
        elif op == DELETE:
            broker_loggers.check_unset(name)
        else:
            refused = f"{_OPERATION_NAMES[op]} operation" if op in _OPERATION_NAMES else f"Unknown operation type {op}"
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"{refused} is not allowed for the BROKER_LOGGER resource")
    if validate_only:
        return
    for operation in operations:
        if operation["config_operation"] == SET:
            broker_loggers.set_level(operation["name"], operation["value"] or "")
        else:
            broker_loggers.unset_level(operation["name"])
