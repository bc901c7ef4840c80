"""DescribeProducers (KIP-664): the producer state each partition holds. With an authorizer
a topic needs READ, else its partitions answer TOPIC_AUTHORIZATION_FAILED (KafkaApis.handleDescribeProducersRequest).
Any replica answers, leader or follower (ReplicaManager.activeProducerState); in a cluster a
node holding no replica of an existing partition answers NOT_LEADER_OR_FOLLOWER
(getPartitionOrError). Kafka gives its errors here no message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.routing import IN_PROCESS_LISTENER, partition_state
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
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
        readable = context.authorize(AclOperation.READ, ResourceType.TOPIC, topic["name"])
        for index in topic["partition_indexes"]:
            entry: DescribeProducersResponsePartitionResponse = {"partition_index": index, "error_code": ErrorCode.NONE, "error_message": None, "active_producers": []}
            if not readable:
                entry["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
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
