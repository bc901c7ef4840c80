"""What DescribeConfigs, AlterConfigs and IncrementalAlterConfigs share: resources, and how a
topic's overrides are replaced (ConfigAdminManager / ControllerConfigurationValidator in Kafka).

Topics carry dynamic configs. Broker settings are static in Ottla (read at start-up from
server.properties, the environment and --set), so the broker resource is described with
read_only set, and altering it is refused as Kafka refuses a static setting.
"""

from __future__ import annotations

from typing import Any, Mapping

from ottla.server.context import RequestContext
from ottla.server.topic_config import validate_configs
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.messages.types import AlterConfigsResponseAlterConfigsResourceResponse

# ConfigResource.Type ids.
TOPIC = 2
BROKER = 4


def check_broker(context: RequestContext, resource_name: str) -> None:
    """Kafka's message for a broker resource naming another node (ConfigAdminManager)."""
    if resource_name == "":
        return
    try:
        node = int(resource_name)
    except ValueError:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Broker id must be an integer, but it is: {resource_name}") from None
    if node != context.node.node_id:
        raise KafkaError(
            ErrorCode.INVALID_REQUEST, f"Unexpected broker id, expected {context.node.node_id} or empty string, but received {resource_name}"
        )


def refuse_broker_change(context: RequestContext, resource_name: str, names: list[str]) -> None:
    check_broker(context, resource_name)
    if names:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Cannot update these configs dynamically: [{', '.join(sorted(set(names)))}]")


def existing_topic(context: RequestContext, name: str):
    info = context.storage.topic(name)
    if info is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist.")
    return info


def check_unique(names: list[str]) -> None:
    if len(set(names)) != len(names):
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Error due to duplicate config keys")


def replace_topic_configs(
    context: RequestContext, name: str, overrides: Mapping[str, str | None], validate_only: bool, unchanged: Mapping[str, str] | None = None
) -> None:
    """Validate a topic's new overrides and, unless validating only, store them. `unchanged`
    are overrides kept as they are: already accepted (the embedding API may set values below
    Kafka's floors, such as a tiny segment.bytes in a test), so not judged again."""
    configs = {**(unchanged or {}), **validate_configs(overrides)}
    if not validate_only:
        context.storage.set_topic_configs(name, configs)


def unsupported_resource(resource_type: int) -> KafkaError:
    return KafkaError(ErrorCode.INVALID_REQUEST, f"Ottla does not keep configs for resource type {resource_type}")


def alter_result(resource: Mapping[str, Any], error: KafkaError | None) -> AlterConfigsResponseAlterConfigsResourceResponse:
    """One resource's answer; IncrementalAlterConfigs' has the same shape."""
    return {
        "error_code": error.code if error else ErrorCode.NONE,
        "error_message": error.message if error else None,
        "resource_type": resource["resource_type"],
        "resource_name": resource["resource_name"],
    }
