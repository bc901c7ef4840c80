"""AlterReplicaLogDirs: move partitions between this broker's log directories, as Kafka's
ReplicaManager.alterReplicaLogDirs answers it. The answer comes at once; the storage copies
the partition into a future log while clients go on, then swaps it in
(storage/relocation.py), and DescribeLogDirs shows the future log meanwhile.

Per partition, checked in Kafka's order: INVALID_TOPIC for a name too long (below), then the
destination (LOG_DIR_NOT_FOUND for a path that is not, character for character, the absolute
path of one of `log.dirs`, as LogManager.isLogDirOnline compares the strings: a trailing `/` or
any other spelling of a directory names none; KAFKA_STORAGE_ERROR for an offline one;
INVALID_REPLICATION_ASSIGNMENT for one cordoned.log.dirs names, as
ReplicaManager.alterReplicaLogDirs refuses it), then the partition (KAFKA_STORAGE_ERROR
offline, REPLICA_NOT_AVAILABLE for one this broker does not hold: Kafka keeps that code for
this API). In a cluster a node holds only the
partitions it is a replica of, though replicas share one log. A partition named more than
once is answered once, for its last destination (Kafka reads the request into a map).
INVALID_TOPIC (Kafka's InvalidTopicException) for a name too long for a future directory's name (255
bytes). Without ALTER on the cluster: CLUSTER_AUTHORIZATION_FAILED (_refused). A broker in
memory has no directories: every path is LOG_DIR_NOT_FOUND."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ottla.server.cluster.routing import IN_PROCESS_LISTENER, partition_state
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        AlterReplicaLogDirsRequest,
        AlterReplicaLogDirsResponse,
        AlterReplicaLogDirsResponseAlterReplicaLogDirPartitionResult,
        AlterReplicaLogDirsResponseAlterReplicaLogDirTopicResult,
    )

API = ApiKey.ALTER_REPLICA_LOG_DIRS
VERSIONS = (0, 2)

# Kafka's UnifiedLog.logFutureDirName: `<topic>-<partition>.<32 hex>-future` must fit a file name.
_FUTURE_NAME_EXTRA = len(".00000000000000000000000000000000-future")


def handle(context: RequestContext, header: RequestHeader, request: AlterReplicaLogDirsRequest) -> AlterReplicaLogDirsResponse:
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):
        return _refused(request)
    destinations: dict[tuple[str, int], str] = {}
    for directory in request["dirs"]:
        for topic in directory["topics"]:
            for index in topic["partitions"]:
                destinations[(topic["name"], index)] = directory["path"]
    results: dict[str, list[AlterReplicaLogDirsResponseAlterReplicaLogDirPartitionResult]] = {}
    for (name, index), path in destinations.items():
        destination = _log_dir_named(context, path)
        results.setdefault(name, []).append({"partition_index": index, "error_code": _alter(context, name, index, destination)})
    topics: list[AlterReplicaLogDirsResponseAlterReplicaLogDirTopicResult] = [
        {"topic_name": name, "partitions": partitions} for name, partitions in results.items()
    ]
    return {"throttle_time_ms": 0, "results": topics}


def _refused(request: AlterReplicaLogDirsRequest) -> AlterReplicaLogDirsResponse:
    """CLUSTER_AUTHORIZATION_FAILED echoing the request as written, as Kafka's
    AlterReplicaLogDirsRequest.getErrorResponse does: a result per directory's topic (a topic
    under two directories twice, one without partitions too), each partition as listed."""
    code = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    return {"throttle_time_ms": 0, "results": [
        {"topic_name": topic["name"], "partitions": [{"partition_index": index, "error_code": code} for index in topic["partitions"]]}
        for directory in request["dirs"] for topic in directory["topics"]]}


def _log_dir_named(context: RequestContext, path: str) -> Path | None:
    """The log directory whose absolute path is `path` as written: as configured, or with its
    links resolved, as DescribeLogDirs reports it."""
    log_dir = context.storage.find_log_dir(path)
    return log_dir if log_dir is not None and path in (str(log_dir.absolute()), str(log_dir.resolve())) else None


def _alter(context: RequestContext, topic: str, index: int, destination: Path | None) -> ErrorCode:
    if len(f"{topic}-{index}".encode()) + _FUTURE_NAME_EXTRA > 255:
        return ErrorCode.INVALID_TOPIC
    storage = context.storage
    if destination is None:
        return ErrorCode.LOG_DIR_NOT_FOUND
    if destination in storage.offline_dirs:
        return ErrorCode.KAFKA_STORAGE_ERROR
    if destination in storage.cordoned_dirs:
        return ErrorCode.INVALID_REPLICATION_ASSIGNMENT
    info = storage.topic(topic)
    if info is None or not 0 <= index < info.partitions:
        return ErrorCode.REPLICA_NOT_AVAILABLE
    cluster = context.services.cluster
    if (cluster is not None and context.client.listener != IN_PROCESS_LISTENER
            and context.node.node_id not in partition_state(context, cluster, info, index).replicas):
        return ErrorCode.REPLICA_NOT_AVAILABLE
    try:
        storage.alter_log_dir(topic, index, destination)
    except KafkaError as error:
        return ErrorCode.REPLICA_NOT_AVAILABLE if error.code is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION else error.code
    return ErrorCode.NONE
