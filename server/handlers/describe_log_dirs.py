"""DescribeLogDirs: the one log directory, each partition's size in bytes (the sum of its
segment files, as Kafka's UnifiedLog.size) and the file system's capacity (KIP-827). In a
cluster each node lists the partitions it holds a replica of (the replicas share the one log
directory and the one log, so each says the same size, with no lag)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import shutil
from collections.abc import Sequence
from ottla.server.cluster.routing import partition_state
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        DescribeLogDirsRequest,
        DescribeLogDirsResponse,
        DescribeLogDirsResponseDescribeLogDirsPartition,
        DescribeLogDirsResponseDescribeLogDirsResult,
        DescribeLogDirsResponseDescribeLogDirsTopic,
    )

API = ApiKey.DESCRIBE_LOG_DIRS
VERSIONS = (0, 4)

# What an in-memory broker reports as its log directory: no path, no file system.
MEMORY_LOG_DIR = "(memory)"


def handle(context: RequestContext, header: RequestHeader, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse:
    if not context.authorize(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "results": []}  # KafkaApis: no directories
    storage = context.storage
    if request["topics"] is None:
        wanted: dict[str, Sequence[int]] = {info.name: range(info.partitions) for info in storage.topics()}
    else:
        wanted = {}
        for topic in request["topics"]:
            info = storage.topic(topic["topic"])
            if info is not None:
                # Kafka leaves out partitions it does not host.
                wanted[info.name] = [p for p in topic["partitions"] if 0 <= p < info.partitions]
    cluster = context.services.cluster
    if cluster is not None:
        node_id = context.node.node_id
        hosted: dict[str, Sequence[int]] = {}
        for name, partitions in wanted.items():
            info = storage.topic(name)
            if info is not None:
                hosted[name] = [p for p in partitions if node_id in partition_state(context, cluster, info, p).replicas]
        wanted = hosted
    topics: list[DescribeLogDirsResponseDescribeLogDirsTopic] = []
    for name, partitions in wanted.items():
        entries: list[DescribeLogDirsResponseDescribeLogDirsPartition] = [
            {"partition_index": index, "partition_size": storage.partition(name, index).size, "offset_lag": 0, "is_future_key": False}
            for index in partitions
        ]
        if entries:
            topics.append({"name": name, "partitions": entries})
    data_dir = context.services.data_dir
    if data_dir is None:
        log_dir, total, usable = MEMORY_LOG_DIR, -1, -1
    else:
        usage = shutil.disk_usage(data_dir)
        log_dir, total, usable = str(data_dir.resolve()), usage.total, usage.free
    result: DescribeLogDirsResponseDescribeLogDirsResult = {"error_code": ErrorCode.NONE, "log_dir": log_dir, "topics": topics, "total_bytes": total, "usable_bytes": usable}
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "results": [result]}
