"""What DescribeConfigs, AlterConfigs and IncrementalAlterConfigs share: resources, and how a
topic's overrides are replaced (ConfigAdminManager / ControllerConfigurationValidator in Kafka).

Topics carry dynamic configs; so does the broker, per node (resource name = node id) and as the
cluster default (empty name), kept by `ottla.server.broker_configs`; the broker's loggers are
the BROKER_LOGGER resource (`ottla.server.broker_loggers`).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Awaitable, Collection, Coroutine, Iterable
from typing import Any, Callable, Mapping, TYPE_CHECKING, TypeVar

from ottla.server.broker_configs import CORDONED_LOG_DIRS_LEVEL, check_elr_min_insync_replicas
from ottla.server.config_entries import Listening
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.telemetry import ClientMetricsError
from ottla.server.topic_config import check_together, validate_configs
from ottla.storage.engine import validate_topic_name
from ottla.wire.errors import ErrorCode, KafkaError

CORDONED_LOG_DIRS = "cordoned.log.dirs"

if TYPE_CHECKING:
    from ottla.wire.messages.types import AlterConfigsResponseAlterConfigsResourceResponse

T = TypeVar("T")
R = TypeVar("R")

# ConfigResource.Type ids.
TOPIC = 2
BROKER = 4
BROKER_LOGGER = 8
CLIENT_METRICS = 16
GROUP = 32

# What authorizes a config resource (KafkaApis.handleDescribeConfigsRequest and the alter
# paths): the broker, its loggers and client metrics are the cluster's, the others their own;
# with the error and the message Kafka answers when the principal may not.
_GUARDS: dict[int, tuple[ResourceType, ErrorCode, str]] = {
    TOPIC: (ResourceType.TOPIC, ErrorCode.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed."),
    BROKER: (ResourceType.CLUSTER, ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed."),
    BROKER_LOGGER: (ResourceType.CLUSTER, ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed."),
    CLIENT_METRICS: (ResourceType.CLUSTER, ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed."),
    GROUP: (ResourceType.GROUP, ErrorCode.GROUP_AUTHORIZATION_FAILED, "Group authorization failed."),
}


def check_authorized(context: RequestContext, operation: AclOperation, resource_type: int, resource_name: str) -> None:
    """Raise the resource's authorization error unless the principal may do `operation`
    (DESCRIBE_CONFIGS or ALTER_CONFIGS) on it; a type Kafka has no ACL for is left to the caller.
    The error carries its default words, but an alteration of the broker or its loggers carries
    none: Kafka's ConfigAdminManager.preprocess refuses those on the broker with a
    ClusterAuthorizationException of the default words, which ApiError.fromThrowable drops,
    while the controller (ControllerApis.authorizeAlterResource) and DescribeConfigs
    (ConfigHelper) answer the words."""
    guard = _GUARDS.get(resource_type)
    if guard is None or context.authorizer is None:
        return
    acl_type, error, message = guard
    if not context.authorize(operation, acl_type, CLUSTER_NAME if acl_type == ResourceType.CLUSTER else resource_name):
        raise KafkaError(error, None if operation == AclOperation.ALTER_CONFIGS and resource_type in (BROKER, BROKER_LOGGER) else message)


def replace_broker_configs(
    context: RequestContext, per_broker: bool, configs: Mapping[str, str], validate_only: bool, recorded: Collection[str], removed: Collection[str]
) -> None:
    """One scope's dynamic broker configs replaced (BrokerConfigs.replace), once the controller's
    feature gates have passed, validate-only too (ConfigurationControlManager.validateAlterConfig):
    while ELR is on, min.insync.replicas stays the cluster's alone (`recorded` are the names the
    change writes, `removed` those it deletes); below metadata.version 4.3-IV0
    cordoned.log.dirs takes no change."""
    store = context.services.broker_configs
    if (
        configs.get(CORDONED_LOG_DIRS) != store.dynamic(per_broker).get(CORDONED_LOG_DIRS)
        and context.services.features.level("metadata.version") < CORDONED_LOG_DIRS_LEVEL
    ):
        raise KafkaError(
            ErrorCode.INVALID_CONFIG, f"The {CORDONED_LOG_DIRS} configuration value cannot be set because it requires metadata.version >= 4.3-IV0"
        )
    elr = context.services.features.level("eligible.leader.replicas.version") >= 1
    store.replace(per_broker, configs, validate_only, functools.partial(check_elr_min_insync_replicas, per_broker, recorded, removed) if elr else None)


def check_broker(context: RequestContext, resource_name: str) -> None:
    """Kafka's message for a broker resource naming another node (ConfigHelper)."""
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


def altered_broker(context: RequestContext, resource_name: str, kind: int) -> bool:
    """Whether an alteration of a broker (or its loggers) is this node's (True) or the cluster
    default's (False), with Kafka's message for another node (ConfigAdminManager)."""
    if resource_name == "" and kind == BROKER:
        return False
    try:
        node = int(resource_name)
    except ValueError:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Node id must be an integer, but it is: {resource_name}") from None
    if node != context.node.node_id:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unexpected broker id, expected {context.node.node_id}, but received {resource_name}")
    return True


def check_logger_broker(context: RequestContext, resource_name: str) -> None:
    """Kafka's messages for DescribeConfigs of another node's loggers, or of nobody's."""
    if resource_name == "":
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Broker id must not be empty")
    try:
        node = int(resource_name)
    except ValueError:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Broker id must be an integer, but it is: {resource_name}") from None
    if node != context.node.node_id:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unexpected broker id, expected {context.node.node_id} but received {resource_name}")


def listening(context: RequestContext) -> Listening:
    nodes = context.services.listener_nodes
    advertised = tuple((name, node.host, node.port) for name, node in nodes.items())
    cluster = context.services.cluster
    if cluster is None:
        return Listening(context.node.port, context.node.host, advertised)
    node_id = context.node.node_id
    return Listening(context.node.port, context.node.host, advertised, node_id, cluster.nodes[node_id].rack)


def existing_topic(context: RequestContext, name: str, altering: bool = False):
    """The topic a config resource names. Its name is judged before it is looked up, as Kafka
    does (`check_topic_resource`); a missing one is UNKNOWN_TOPIC_OR_PARTITION with the message
    "", as ConfigHelper.describeConfigs answers it (a result it builds, setting no message)."""
    check_topic_resource(name, altering)
    info = context.storage.topic(name)
    if info is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "")
    return info


def check_topic_resource(name: str, altering: bool = False) -> None:
    """A topic resource's name as Kafka judges it before anything else: an illegal one is
    INVALID_TOPIC_EXCEPTION (ConfigHelper's Topic.validate), and an empty one to alter is the
    default topic resource, INVALID_REQUEST (ControllerConfigurationValidator)."""
    if altering and not name:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Default topic resources are not allowed.")
    validate_topic_name(name)


def _no_such_topic(name: str) -> KafkaError:
    return KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist.")


def repeated_resources(resources: Iterable[Mapping[str, Any]]) -> set[tuple[int, str]]:
    """(type, name) of each resource a request names more than once: ConfigAdminManager.preprocess
    refuses every one of those (`repeated_resource`) before looking at anything else."""
    counts = Counter((resource["resource_type"], resource["resource_name"]) for resource in resources)
    return {key for key, count in counts.items() if count > 1}


def repeated_resource() -> KafkaError:
    return KafkaError(ErrorCode.INVALID_REQUEST, "Each resource must appear at most once.")


def check_preprocessed(names: list[str], null_names: list[str]) -> None:
    """ConfigAdminManager.preprocess on one resource, before its type, name or authorization:
    distinct config names, and a value wherever the operation needs one (`null_names` lack it)."""
    check_unique(names)
    if null_names:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Null value not supported for : " + ", ".join(null_names))


def check_unique(names: list[str]) -> None:
    if len(set(names)) != len(names):
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Error due to duplicate config keys")


def unknown_resource(resource_type: int) -> KafkaError:
    """An alteration of a resource type Kafka alters no configs of (ConfigAdminManager.preprocess)."""
    return KafkaError(ErrorCode.INVALID_REQUEST, f"Unknown resource type {resource_type}")


def replace_topic_configs(
    context: RequestContext, name: str, overrides: Mapping[str, str | None], validate_only: bool, unchanged: Mapping[str, str] | None = None
) -> Callable[[], Awaitable[object]] | None:
    """Validate a topic's new overrides and, unless validating only, store them. `unchanged`
    are overrides kept as they are: already accepted (the embedding API may set values below
    Kafka's floors, such as a tiny segment.bytes in a test), so not judged again. A topic of an
    async engine (PostgreSQL) is stored by the call returned, for the handler to await with
    `stored_after`; None when nothing is left to do. Whether the topic exists is asked after its
    values are judged, as Kafka's ConfigurationControlManager validates a change before its
    existence check (UNKNOWN_TOPIC_OR_PARTITION)."""
    configs = {**(unchanged or {}), **validate_configs(overrides, held=len(unchanged or {}))}
    check_together(configs, context.storage.defaults)
    if context.storage.topic(name) is None:
        raise _no_such_topic(name)
    if validate_only:
        return None
    storage = context.storage
    if storage.is_database_topic(name):
        return functools.partial(storage.set_database_topic_configs, name, configs)  # type: ignore[attr-defined]
    storage.set_topic_configs(name, configs)
    return None


def stored_after(
    response: R, pending: list[tuple[AlterConfigsResponseAlterConfigsResourceResponse, Callable[[], Awaitable[object]]]]
) -> R | Coroutine[Any, Any, R]:
    """`response` at once when no resource waits on an async engine, else once each store in
    `pending` is done, in request order, a failed one's KafkaError answered in its resource."""
    if not pending:
        return response

    async def store() -> R:
        for result, stored in pending:
            try:
                await stored()
            except KafkaError as exc:
                result["error_code"] = exc.code
                result["error_message"] = exc.message
        return response

    return store()


def client_metrics(call: Callable[..., T], *args: Any) -> T:
    """A call on the client metrics subscriptions, its refusal as the Kafka error it names."""
    try:
        return call(*args)
    except ClientMetricsError as exc:
        raise KafkaError(exc.code, exc.message) from None


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
