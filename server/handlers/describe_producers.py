"""DescribeProducers (KIP-664): the producer state each partition holds.

KafkaApis.handleDescribeProducersRequest judges each topic first, and answers all its
partitions with the topic's error and that error's message: an illegal name is INVALID_TOPIC
(Topic.validate's words), then with an authorizer a topic needs READ (TOPIC_AUTHORIZATION_FAILED),
then an unknown topic is UNKNOWN_TOPIC_OR_PARTITION. A partition of a known topic is
ReplicaManager.activeProducerState's, whose errors carry no message: any replica answers,
leader or follower; in a cluster a node holding no replica of an existing partition answers
NOT_LEADER_OR_FOLLOWER (getPartitionOrError), and a partition past the last is
UNKNOWN_TOPIC_OR_PARTITION."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.routing import IN_PROCESS_LISTENER, partition_state
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.storage.engine import invalid_topic_message
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError, default_message
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        DescribeProducersRequest,
        DescribeProducersResponse,
        DescribeProducersResponsePartitionResponse,
        DescribeProducersResponseTopicResponse,
    )

API = ApiKey.DESCRIBE_PRODUCERS
VERSIONS = (0, 0)


def handle(context: RequestContext, header: RequestHeader, request: DescribeProducersRequest) -> DescribeProducersResponse:
    cluster = context.services.cluster
    topics: list[DescribeProducersResponseTopicResponse] = []
    for topic in request["topics"]:
        partitions: list[DescribeProducersResponsePartitionResponse] = []
        topic_error = _topic_error(context, topic["name"])
        for index in topic["partition_indexes"]:
            entry: DescribeProducersResponsePartitionResponse = {"partition_index": index, "error_code": ErrorCode.NONE, "error_message": None, "active_producers": []}
            if topic_error is not None:
                entry["error_code"], entry["error_message"] = topic_error
                partitions.append(entry)
                continue
            try:
                log = context.storage.partition(topic["name"], index)
                if cluster is not None and context.client.listener != IN_PROCESS_LISTENER:
                    info = context.storage.topic(topic["name"])
                    if info is not None and context.node.node_id not in partition_state(context, cluster, info, index).replicas:
                        raise KafkaError(ErrorCode.NOT_LEADER_FOR_PARTITION)
            except KafkaError as exc:
                entry["error_code"] = exc.code
            else:
                entry["active_producers"] = [
                    {
                        "producer_id": producer_id,
                        "producer_epoch": state.epoch,
                        "last_sequence": state.last_seq,
                        "last_timestamp": state.last_timestamp,
                        "coordinator_epoch": state.coordinator_epoch,
                        "current_txn_start_offset": -1 if state.current_txn_first_offset is None else state.current_txn_first_offset,
                    }
                    for producer_id, state in sorted(log.producer_state.producers.items())
                ]
            partitions.append(entry)
        topics.append({"name": topic["name"], "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}


def _topic_error(context: RequestContext, name: str) -> tuple[ErrorCode, str | None] | None:
    """The error all of a topic's partitions answer, with its message (an ApiError's), if any."""
    invalid = invalid_topic_message(name)
    if invalid is not None:
        return ErrorCode.INVALID_TOPIC, invalid
    if not context.authorize(AclOperation.READ, ResourceType.TOPIC, name):
        return ErrorCode.TOPIC_AUTHORIZATION_FAILED, default_message(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    if context.storage.topic(name) is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, default_message(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    return None
