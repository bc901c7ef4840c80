"""DeleteRecords: move each partition's log start offset up (offset -1: to the high
watermark); storage drops the segments wholly below it and keeps the new start across restarts.
In a cluster only the partition's leader does it (else NOT_LEADER_OR_FOLLOWER). An async engine's
partitions (PostgreSQL: batches rather than segments) are done together after the others.
An internal topic's records are not a client's to delete: INVALID_TOPIC_EXCEPTION (KafkaApis
calls ReplicaManager.deleteRecords with allowInternalTopicDeletion false; only the group
coordinator's own deletions pass true), once the partition is known to exist."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ottla.server.cluster.routing import leader_partition
from ottla.server.context import RequestContext
from ottla.server.handlers._together import outcomes
from ottla.server.groups import INTERNAL_TOPICS
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        DeleteRecordsRequest,
        DeleteRecordsResponse,
        DeleteRecordsResponseDeleteRecordsPartitionResult,
        DeleteRecordsResponseDeleteRecordsTopicResult,
    )

API = ApiKey.DELETE_RECORDS
VERSIONS = (0, 2)


def handle(
    context: RequestContext, header: RequestHeader, request: DeleteRecordsRequest
) -> DeleteRecordsResponse | Coroutine[Any, Any, DeleteRecordsResponse]:
    topics: list[DeleteRecordsResponseDeleteRecordsTopicResult] = []
    storage = context.storage
    # An async engine's partitions and their targets, deleted together after this loop.
    pending: list[tuple[DeleteRecordsResponseDeleteRecordsPartitionResult, Any, int]] = []
    allowed = context.authorized(AclOperation.DELETE, ResourceType.TOPIC, (topic["name"] for topic in request["topics"]))
    for name, offsets in _targets(request).items():
        partitions: list[DeleteRecordsResponseDeleteRecordsPartitionResult] = []
        for index, offset in offsets.items():
            entry: DeleteRecordsResponseDeleteRecordsPartitionResult = {"partition_index": index, "low_watermark": -1, "error_code": ErrorCode.NONE}
            if name not in allowed:
                entry["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED  # KafkaApis: DELETE on the topic
                partitions.append(entry)
                continue
            try:
                if name in INTERNAL_TOPICS:
                    _refuse_internal(context, name, index)
                if context.services.cluster is not None:
                    leader_partition(context, context.services.cluster, name, index)
                log = storage.partition(name, index)
                if not log.config.delete:
                    # Partition.deleteRecordsOnLeader: only a policy with `delete` lets records go early.
                    raise KafkaError(ErrorCode.POLICY_VIOLATION, f"Records of partition {name}-{index} can not be deleted due to the configured policy")
                if storage.is_database_topic(name):
                    pending.append((entry, log, offset))
                else:
                    entry["low_watermark"] = log.delete_records(offset)
            except KafkaError as exc:
                entry["error_code"] = exc.code
            partitions.append(entry)
        topics.append({"name": name, "partitions": partitions})
    response: DeleteRecordsResponse = {"throttle_time_ms": 0, "topics": topics}
    if pending:
        return _delete_all(response, pending)
    return response


def _targets(request: DeleteRecordsRequest) -> dict[str, dict[int, int]]:
    """The offset asked for each partition, by topic. KafkaApis.handleDeleteRecordsRequest files
    them in maps keyed by partition: a partition named more than once is deleted up to the last
    offset given and answered once, a topic named more than once is answered once, and one named
    without partitions is not answered."""
    targets: dict[str, dict[int, int]] = {}
    for topic in request["topics"]:
        for wanted in topic["partitions"]:
            targets.setdefault(topic["name"], {})[wanted["partition_index"]] = wanted["offset"]
    return targets


def _refuse_internal(context: RequestContext, name: str, index: int) -> None:
    """KafkaApis answers a partition it does not know UNKNOWN_TOPIC_OR_PARTITION before
    ReplicaManager.deleteRecordsOnLocalLog refuses an internal topic's."""
    info = context.storage.topic(name)
    if info is None or not 0 <= index < info.partitions:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    raise KafkaError(ErrorCode.INVALID_TOPIC, f"Cannot delete records of internal topic {name}")


async def _delete_all(
    response: DeleteRecordsResponse, pending: list[tuple[DeleteRecordsResponseDeleteRecordsPartitionResult, Any, int]]
) -> DeleteRecordsResponse:
    """The async engine's deletions, all at once, each answered as the local engine's is."""
    for (entry, _, _), outcome in zip(pending, await outcomes(log.delete_records(offset) for _, log, offset in pending)):
        if isinstance(outcome, KafkaError):
            entry["error_code"] = outcome.code
        else:
            entry["low_watermark"] = outcome
    return response
