"""DescribeTopicPartitions (KIP-966): Metadata's partition view, paged by a cursor over
(topic name, partition) in name order, as Kafka's DescribeTopicPartitionsRequestHandler pages it.
A cursor naming a topic the request does not list, or a negative partition, is an invalid
request; one past a topic's last partition pages on from the next topic.

With an authorizer a topic needs DESCRIBE: left out of a listing of every topic, and
TOPIC_AUTHORIZATION_FAILED (with no id, after the others) when named, whether it exists or
not; each topic answered carries the operations the principal may do on it.

Each partition carries its eligible leader replicas and last-known ELR as the cluster keeps
them (server/cluster/state.py), as KRaftMetadataCache reports the partition's registration
whatever the feature's level; a single node has neither."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.routing import partition_state
from ottla.server.context import RequestContext
from ottla.server.handlers._topics import partition_metadata
from ottla.server.groups import INTERNAL_TOPICS
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.storage.engine import validate_topic_name
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.storage import TopicInfo
    from ottla.wire.messages.types import (
        DescribeTopicPartitionsRequest,
        DescribeTopicPartitionsResponse,
        DescribeTopicPartitionsResponseCursor,
        DescribeTopicPartitionsResponseDescribeTopicPartitionsResponsePartition,
        DescribeTopicPartitionsResponseDescribeTopicPartitionsResponseTopic,
        MetadataResponseMetadataResponsePartition,
    )

API = ApiKey.DESCRIBE_TOPIC_PARTITIONS
VERSIONS = (0, 0)

# Kafka's max.request.partition.size.limit default: the most partitions one answer carries.
MAX_PARTITIONS_PER_RESPONSE = 2000
_OPERATIONS_OMITTED = -(2**31)


def handle(context: RequestContext, header: RequestHeader, request: DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse:
    storage = context.storage
    cursor = request["cursor"]
    start_name = cursor["topic_name"] if cursor else ""
    requested = sorted({topic["name"] for topic in request["topics"]})
    if cursor and ((requested and start_name not in requested) or cursor["partition_index"] < 0):
        # The handler throws InvalidRequestException: DescribeTopicPartitionsRequest.getErrorResponse
        # answers each topic as the request lists it.
        return {"throttle_time_ms": 0, "topics": [_error(topic["name"], ErrorCode.INVALID_REQUEST) for topic in request["topics"]], "next_cursor": None}
    names = requested or sorted(info.name for info in storage.topics())
    # At least one partition, as Kafka 4.4 takes a limit of 0 or less: a page of none would
    # hand back the cursor it was given, and a client paging on it would never finish.
    remaining = max(1, min(request["response_partition_limit"], MAX_PARTITIONS_PER_RESPONSE))
    topics: list[DescribeTopicPartitionsResponseDescribeTopicPartitionsResponseTopic] = []
    next_cursor: DescribeTopicPartitionsResponseCursor | None = None
    unauthorized: list[DescribeTopicPartitionsResponseDescribeTopicPartitionsResponseTopic] = []
    for name in (n for n in names if n >= start_name):
        if not context.authorize(AclOperation.DESCRIBE, ResourceType.TOPIC, name):
            if requested:
                unauthorized.append(_error(name, ErrorCode.TOPIC_AUTHORIZATION_FAILED))
            continue
        if remaining == 0:
            next_cursor = {"topic_name": name, "partition_index": 0}
            break
        info = storage.topic(name)
        if info is None:
            # KRaftMetadataCache.describeTopicResponse: Topic.validate tells a name no topic
            # could have (INVALID_TOPIC) from an unknown one; the operations are filled all the same.
            try:
                validate_topic_name(name)
            except KafkaError as exc:
                missing = _error(name, exc.code)
            else:
                missing = _error(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            missing["topic_authorized_operations"] = context.authorized_operations(ResourceType.TOPIC, name)
            topics.append(missing)
            continue
        first = cursor["partition_index"] if cursor and name == start_name else 0
        every_partition = partition_metadata(context, info)
        # KRaftMetadataCache.partitionMetadataForDescribeTopicResponse ends the page at
        # min(partition count, first + remaining) in int32: a cursor near 2**31 wraps the end
        # negative, which answers no partition and hands back the wrapped end as the next cursor.
        end = min(len(every_partition), _int32(first + remaining))
        partitions = every_partition[first:end] if end > first else []
        if end < len(every_partition):
            next_cursor = {"topic_name": name, "partition_index": end}
        remaining -= len(partitions)
        topics.append(
            {
                "error_code": ErrorCode.NONE,
                "name": name,
                "topic_id": info.topic_id,
                "is_internal": name in INTERNAL_TOPICS,
                "partitions": [_with_elr(context, info, p) for p in partitions],
                "topic_authorized_operations": context.authorized_operations(ResourceType.TOPIC, name),
            }
        )
        if next_cursor is not None:
            break
    return {"throttle_time_ms": 0, "topics": topics + unauthorized, "next_cursor": next_cursor}


def _int32(value: int) -> int:
    """`value` wrapped to a Java int, as Kafka's int arithmetic overflows."""
    return (value + 2**31) % 2**32 - 2**31


def _with_elr(context: RequestContext, info: TopicInfo, partition: MetadataResponseMetadataResponsePartition
              ) -> DescribeTopicPartitionsResponseDescribeTopicPartitionsResponsePartition:
    """A partition as Metadata describes it, with its eligible leader replicas (KIP-966), and
    never an error: KRaftMetadataCache.partitionMetadataForDescribeTopicResponse sets none,
    where Metadata answers a leaderless partition LEADER_NOT_AVAILABLE."""
    cluster = context.services.cluster
    elr: list[int] = []
    last_known_elr: list[int] = []
    if cluster is not None:
        state = partition_state(context, cluster, info, partition["partition_index"])
        elr, last_known_elr = list(state.elr), list(state.last_known_elr)
    return {
        "error_code": ErrorCode.NONE,
        "partition_index": partition["partition_index"],
        "leader_id": partition["leader_id"],
        "leader_epoch": partition.get("leader_epoch", 0),
        "replica_nodes": partition["replica_nodes"],
        "isr_nodes": partition["isr_nodes"],
        "eligible_leader_replicas": elr,
        "last_known_elr": last_known_elr,
        "offline_replicas": partition.get("offline_replicas", []),
    }


def _error(name: str, code: ErrorCode) -> DescribeTopicPartitionsResponseDescribeTopicPartitionsResponseTopic:
    """A topic answered with an error: an internal topic's name is said internal (Topic.isInternal),
    except where Kafka says false outright (a refused topic, an invalid request)."""
    return {
        "error_code": code,
        "name": name,
        "topic_id": bytes(16),
        "is_internal": code not in (ErrorCode.TOPIC_AUTHORIZATION_FAILED, ErrorCode.INVALID_REQUEST) and name in INTERNAL_TOPICS,
        "partitions": [],
        "topic_authorized_operations": _OPERATIONS_OMITTED,
    }
