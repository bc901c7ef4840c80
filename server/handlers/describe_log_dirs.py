"""DescribeLogDirs: every log directory (Kafka's `log.dirs`, in their order), each partition
in it with its size in bytes (the sum of its segment files, as Kafka's UnifiedLog.size), and
the file system's capacity (KIP-827). A partition on its way to another directory
(AlterReplicaLogDirs) is listed there too, as Kafka lists a future log: `is_future_key`, the
bytes copied so far and how far it lags. A failed directory answers KAFKA_STORAGE_ERROR with
nothing in it, as Kafka's ReplicaManager.describeLogDirs does for an offline one. v5's
`is_cordoned` (KIP-1066): the directory is in cordoned.log.dirs, reported from
metadata.version 4.3-IV0 only (false below, as Kafka's describeLogDirs). In a cluster each node
lists the partitions it holds a replica of (the replicas share the log directories and the
one log, so each says the same size, with no lag)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import shutil
from collections.abc import Sequence
from pathlib import Path
from ottla.server.broker_configs import CORDONED_LOG_DIRS_LEVEL
from ottla.server.cluster.routing import partition_state
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.storage import Storage
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
VERSIONS = (0, 5)

# What an in-memory broker reports as its log directory: no path, no file system.
MEMORY_LOG_DIR = "(memory)"


def handle(context: RequestContext, header: RequestHeader, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse:
    if not context.authorize(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "results": []}  # KafkaApis: no directories
    storage = context.storage
    if request["topics"] is None:
        wanted: dict[str, Sequence[int]] = {info.name: range(info.partitions) for info in storage.topics()}
    else:
        # Kafka takes the request as a set of partitions: a topic named twice is the union of
        # its entries, a partition asked twice is answered once, and partitions it does not
        # host are left out.
        asked: dict[str, set[int]] = {}
        for topic in request["topics"]:
            info = storage.topic(topic["topic"])
            if info is not None:
                asked.setdefault(info.name, set()).update(p for p in topic["partitions"] if 0 <= p < info.partitions)
        wanted = {name: sorted(partitions) for name, partitions in asked.items()}
    cluster = context.services.cluster
    if cluster is not None:
        node_id = context.node.node_id
        hosted: dict[str, Sequence[int]] = {}
        for name, partitions in wanted.items():
            info = storage.topic(name)
            if info is not None:
                hosted[name] = [p for p in partitions if node_id in partition_state(context, cluster, info, p).replicas]
        wanted = hosted
    states = storage.log_dir_states()
    cordoned = storage.cordoned_dirs if context.services.features.level("metadata.version") >= CORDONED_LOG_DIRS_LEVEL else frozenset()
    if not states:
        topics = _topics_in(storage, wanted, None)
        memory: DescribeLogDirsResponseDescribeLogDirsResult = {
            "error_code": ErrorCode.NONE, "log_dir": MEMORY_LOG_DIR, "topics": topics, "total_bytes": -1, "usable_bytes": -1, "is_cordoned": False
        }
        return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "results": [memory]}
    results: list[DescribeLogDirsResponseDescribeLogDirsResult] = []
    for state in states:
        error, topics, total, usable = ErrorCode.KAFKA_STORAGE_ERROR, [], -1, -1
        if not state.offline:
            try:
                usage = shutil.disk_usage(state.path)
            except OSError:
                storage.fail_log_dir(state.path)
            else:
                error, topics, total, usable = ErrorCode.NONE, _topics_in(storage, wanted, state.path), usage.total, usage.free
        results.append(
            {
                "error_code": error, "log_dir": str(state.path.resolve()), "topics": topics, "total_bytes": total, "usable_bytes": usable,
                "is_cordoned": state.path in cordoned,
            }
        )
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "results": results}


def _topics_in(storage: Storage, wanted: dict[str, Sequence[int]], log_dir: Path | None) -> list[DescribeLogDirsResponseDescribeLogDirsTopic]:
    """The wanted partitions whose current or future log is in `log_dir` (None: in memory)."""
    topics: list[DescribeLogDirsResponseDescribeLogDirsTopic] = []
    for name, partitions in wanted.items():
        entries: list[DescribeLogDirsResponseDescribeLogDirsPartition] = []
        for index in partitions:
            if storage.log_dir_of(name, index) == log_dir:
                entries.append({"partition_index": index, "partition_size": storage.partition(name, index).size, "offset_lag": 0, "is_future_key": False})
            future = storage.future_log(name, index)
            if future is not None and future.destination == log_dir:
                entries.append({"partition_index": index, "partition_size": future.size, "offset_lag": future.offset_lag, "is_future_key": True})
        if entries:
            topics.append({"name": name, "partitions": entries})
    return topics
