"""WriteTxnMarkers: COMMIT or ABORT markers written straight into partitions.

Kafka's transaction coordinator sends it to partition leaders; clients send it too: the
admin client's abortTransaction (KIP-664, `kafka-transactions abort`) ends a hanging
transaction by its producer id and epoch, found with DescribeProducers. Our coordinator
writes its own markers in process (TransactionCoordinator.write_markers), so here only
outside callers arrive. A PostgreSQL partition's marker is written by a task: awaited, and its
outcome answered, before the response. Each partition answers on its own, as
KafkaApis.handleWriteTxnMarkersRequest: UNKNOWN_TOPIC_OR_PARTITION for one that does not
exist, INVALID_PRODUCER_EPOCH for an epoch older than the producer's in that partition.
Version 0 left in Kafka 4.0; v2 adds the marker's TransactionVersion (KIP-1228), which
changes nothing here: our epoch check is the same for both.

Among brokers over one database the transaction coordinator does send it, to the broker
coordinating a group whose `__consumer_offsets` partition is in the transaction
(server/txn/marker_channel.py): that partition's marker completes the pending offsets this
broker's group coordinator holds, so a broker that does not lead the partition answers
NOT_LEADER_OR_FOLLOWER, and one still replaying it COORDINATOR_LOAD_IN_PROGRESS, for the sender
to retry with the partition's leader.

With an authorizer it needs ALTER on the cluster (an admin aborting a hanging transaction,
KIP-664) or else CLUSTER_ACTION, without which every partition answers
CLUSTER_AUTHORIZATION_FAILED (KafkaApis: authorize ALTER, then authorizeClusterOperation, then
getErrorResponse).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ottla.server.context import RequestContext
from ottla.server.coordinator.topics import OFFSETS_TOPIC
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.txn.marker_channel import offsets_partition_refusal
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        WriteTxnMarkersRequest,
        WriteTxnMarkersResponse,
        WriteTxnMarkersResponseWritableTxnMarkerResult,
        WriteTxnMarkersResponseWritableTxnMarkerTopicResult,
    )

API = ApiKey.WRITE_TXN_MARKERS
VERSIONS = (1, 2)


def may_write_markers(context: RequestContext) -> bool:
    """ALTER or CLUSTER_ACTION on the cluster, as KafkaApis.handleWriteTxnMarkersRequest asks."""
    return (context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME)
            or context.authorize(AclOperation.CLUSTER_ACTION, ResourceType.CLUSTER, CLUSTER_NAME))


def handle(
    context: RequestContext, header: RequestHeader, request: WriteTxnMarkersRequest
) -> WriteTxnMarkersResponse | Coroutine[Any, Any, WriteTxnMarkersResponse]:
    if not may_write_markers(context):
        return {"markers": [
            {"producer_id": marker["producer_id"], "topics": [
                {"name": topic["name"], "partitions": [{"partition_index": index, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED} for index in topic["partition_indexes"]]}
                for topic in marker["topics"]]}
            for marker in request["markers"]]}
    storage = context.storage
    results: list[WriteTxnMarkersResponseWritableTxnMarkerResult] = []
    for marker in request["markers"]:
        errors: dict[tuple[str, int], ErrorCode] = {}
        known: list[tuple[str, int]] = []
        for topic in marker["topics"]:
            info = storage.topic(topic["name"])
            for partition in topic["partition_indexes"]:
                if info is None or not 0 <= partition < info.partitions:
                    errors[(topic["name"], partition)] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                elif (refusal := _offsets_refusal(context, topic["name"], partition)) is not ErrorCode.NONE:
                    errors[(topic["name"], partition)] = refusal
                else:
                    known.append((topic["name"], partition))
        errors.update(
            context.txn.write_markers(marker["producer_id"], marker["producer_epoch"], marker["transaction_result"], known, marker["coordinator_epoch"])
        )
        by_topic: dict[str, WriteTxnMarkersResponseWritableTxnMarkerTopicResult] = {}
        for (name, partition), error in errors.items():
            by_topic.setdefault(name, {"name": name, "partitions": []})["partitions"].append({"partition_index": partition, "error_code": error})
        results.append({"producer_id": marker["producer_id"], "topics": list(by_topic.values())})
    if storage.is_async:
        return _after_markers(context, results)
    return {"markers": results}


def _offsets_refusal(context: RequestContext, topic: str, partition: int) -> ErrorCode:
    """Why this broker cannot complete a `__consumer_offsets` partition's offsets (NONE: it can)."""
    channel = context.txn.offsets_marker_channel
    if topic != OFFSETS_TOPIC or channel is None:
        return ErrorCode.NONE
    return offsets_partition_refusal(channel.leader(partition), context.node.node_id, context.groups.log.loading(partition))


async def _after_markers(context: RequestContext, results: list[WriteTxnMarkersResponseWritableTxnMarkerResult]) -> WriteTxnMarkersResponse:
    """Each database partition's marker as it was written (NONE answered for it so far)."""
    written = await context.txn.database_markers.settled(
        (topic["name"], partition["partition_index"]) for result in results for topic in result["topics"] for partition in topic["partitions"]
    )
    for result in results:
        for topic in result["topics"]:
            for partition in topic["partitions"]:
                if partition["error_code"] == ErrorCode.NONE:
                    partition["error_code"] = written.get((topic["name"], partition["partition_index"]), ErrorCode.NONE)
    return {"markers": results}
