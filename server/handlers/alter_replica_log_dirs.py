"""AlterReplicaLogDirs: move partitions between this broker's log directories, as Kafka's
ReplicaManager.alterReplicaLogDirs answers it. The answer comes at once; the storage copies
the partition into a future log while clients go on, then swaps it in
(storage/relocation.py), and DescribeLogDirs shows the future log meanwhile.

Per partition: LOG_DIR_NOT_FOUND for a path that is none of `log.dirs` (an absolute path as
DescribeLogDirs reports it), KAFKA_STORAGE_ERROR for an offline directory or partition,
REPLICA_NOT_AVAILABLE for a partition this broker does not hold (Kafka keeps that code for
this API), INVALID_TOPIC (Kafka's InvalidTopicException) for a name too long for a future directory's name (255
bytes), CLUSTER_AUTHORIZATION_FAILED for all without ALTER on the cluster. A broker in
memory has no directories: every path is LOG_DIR_NOT_FOUND."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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
    authorized = context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME)
    storage = context.storage
    results: dict[str, list[AlterReplicaLogDirsResponseAlterReplicaLogDirPartitionResult]] = {}
    for directory in request["dirs"]:
        destination = storage.find_log_dir(directory["path"])
        for topic in directory["topics"]:
            answers = results.setdefault(topic["name"], [])
            for index in topic["partitions"]:
                answers.append({"partition_index": index, "error_code": _alter(context, topic["name"], index, destination, authorized)})
    topics: list[AlterReplicaLogDirsResponseAlterReplicaLogDirTopicResult] = [
        {"topic_name": name, "partitions": partitions} for name, partitions in results.items()
    ]
    return {"throttle_time_ms": 0, "results": topics}


def _alter(context: RequestContext, topic: str, index: int, destination: Path | None, authorized: bool) -> ErrorCode:
    if not authorized:
        return ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    if len(f"{topic}-{index}".encode()) + _FUTURE_NAME_EXTRA > 255:
        return ErrorCode.INVALID_TOPIC
    storage = context.storage
    if destination is None:
        return ErrorCode.LOG_DIR_NOT_FOUND
    info = storage.topic(topic)
    if info is None or not 0 <= index < info.partitions:
        return ErrorCode.REPLICA_NOT_AVAILABLE
    try:
        storage.alter_log_dir(topic, index, destination)
    except KafkaError as error:
        return ErrorCode.REPLICA_NOT_AVAILABLE if error.code is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION else error.code
    return ErrorCode.NONE
