"""OffsetForLeaderEpoch (KIP-101/KIP-320): the end offset of a leader epoch, which consumers
(librdkafka) use to validate their position after a leader change.

This node has led every partition since it was created, always in epoch 0 (the epoch Metadata
reports and Produce stamps into batches), so epoch 0 ends at the log end offset and any other
epoch is answered as Kafka's LeaderEpochFileCache.endOffsetFor answers it: a later one is
unknown (-1, -1), and one below epoch 0 (other than -1, "no epoch") is itself, ending where
epoch 0 starts, the log start offset (the cache's first entry moves with the log start).
In a cluster (server/cluster/) only the leader answers (Partition.lastOffsetForLeaderEpoch
reads from the leader only; a follower checks the client's current leader epoch first), from
the partition's epoch history: an epoch ends where the next one starts, the latest at the log
end. Over one PostgreSQL that history is the database's (where each epoch's first batch starts,
DatabasePartition.end_offset_for_epoch): those partitions' answers are looked up together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ottla.server.cluster.routing import check_current_leader_epoch, leader_partition
from ottla.server.context import Answer, RequestContext
from ottla.server.handlers._together import outcomes
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        OffsetForLeaderEpochRequest,
        OffsetForLeaderEpochResponse,
        OffsetForLeaderEpochResponseEpochEndOffset,
        OffsetForLeaderEpochResponseOffsetForLeaderTopicResult,
    )

API = ApiKey.OFFSET_FOR_LEADER_EPOCH
VERSIONS = (0, 4)

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


def handle(context: RequestContext, header: RequestHeader, request: OffsetForLeaderEpochRequest) -> Answer[OffsetForLeaderEpochResponse]:
    storage = context.storage
    # A database partition's lookup still to do: its entry, partition and the requested epoch.
    pending: list[tuple[OffsetForLeaderEpochResponseEpochEndOffset, Any, int]] = []
    topics: list[OffsetForLeaderEpochResponseOffsetForLeaderTopicResult] = []
    refused: list[OffsetForLeaderEpochResponseOffsetForLeaderTopicResult] = []
    # KafkaApis.handleOffsetForLeaderEpochRequest: CLUSTER_ACTION (a follower) or DESCRIBE per
    # topic; a refused topic's partitions answer TOPIC_AUTHORIZATION_FAILED, after the others.
    allowed = None
    if context.authorizer is not None and not context.authorize(AclOperation.CLUSTER_ACTION, ResourceType.CLUSTER, CLUSTER_NAME):
        allowed = context.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, (topic["topic"] for topic in request["topics"]))
    for topic in request["topics"]:
        partitions: list[OffsetForLeaderEpochResponseEpochEndOffset] = []
        for wanted in topic["partitions"]:
            entry: OffsetForLeaderEpochResponseEpochEndOffset = {
                "error_code": ErrorCode.NONE,
                "partition": wanted["partition"],
                "leader_epoch": UNDEFINED_EPOCH,
                "end_offset": UNDEFINED_EPOCH_OFFSET,
            }
            if allowed is not None and topic["topic"] not in allowed:
                entry["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                partitions.append(entry)
                continue
            try:
                log = storage.partition(topic["topic"], wanted["partition"])
                if context.services.cluster is not None:
                    state = leader_partition(context, context.services.cluster, topic["topic"], wanted["partition"],
                                             wanted.get("current_leader_epoch", -1))
                    if storage.is_async and storage.is_database_topic(topic["topic"]):
                        pending.append((entry, log, wanted["leader_epoch"]))
                    else:
                        entry["leader_epoch"], entry["end_offset"] = state.end_offset_for(wanted["leader_epoch"], log.log_end_offset)
                    partitions.append(entry)
                    continue
                check_current_leader_epoch(wanted.get("current_leader_epoch", -1), log.leader_epoch)
            except KafkaError as exc:
                entry["error_code"] = exc.code
            else:
                if wanted["leader_epoch"] == log.leader_epoch:
                    entry["leader_epoch"] = log.leader_epoch
                    entry["end_offset"] = log.log_end_offset
                elif wanted["leader_epoch"] < UNDEFINED_EPOCH:  # below epoch 0, the first
                    entry["leader_epoch"] = wanted["leader_epoch"]
                    entry["end_offset"] = log.log_start_offset
            partitions.append(entry)
        (refused if allowed is not None and topic["topic"] not in allowed else topics).append({"topic": topic["topic"], "partitions": partitions})
    response: OffsetForLeaderEpochResponse = {"throttle_time_ms": 0, "topics": topics + refused}
    return _look_up_all(response, pending) if pending else response


async def _look_up_all(response: OffsetForLeaderEpochResponse,
                       pending: list[tuple[OffsetForLeaderEpochResponseEpochEndOffset, Any, int]]) -> OffsetForLeaderEpochResponse:
    """The database partitions' epoch ends, all at once, each entry filled as `handle` fills it."""
    for (entry, _, _), outcome in zip(pending, await outcomes(log.end_offset_for_epoch(epoch) for _, log, epoch in pending)):
        if isinstance(outcome, KafkaError):
            entry["error_code"] = outcome.code
        else:
            entry["leader_epoch"], entry["end_offset"] = outcome
    return response

