"""DescribeShareGroupOffsets: each share-partition's start offset (SPSO) and, from v1, its lag.

A partition the group never initialized answers start offset -1, as Kafka's persister does
for a partition with no state, and so does every partition of a group that does not exist
and of a topic that does not exist (Kafka 4.4 answers so, without an error); a null topic list
means every partition the group initialized.

A partition index past the topic's count has no state either: start offset -1, no error, as
Kafka 4.4 answers for a group that never initialized the topic (for one that did, it leaves the
request unanswered). Divergence: a negative partition index is UNKNOWN_TOPIC_OR_PARTITION here;
Kafka 4.4's persister fails the whole group with UNKNOWN_SERVER_ERROR. So it does (its
DefaultStatePersister.validate throws IllegalArgumentException) for a topic that exists named
with an empty partition list, and for the group id "" naming one: here the first answers the
topic with no partitions, the second as any other group.

As KafkaApis.handleDescribeShareGroupOffsetsRequest: DESCRIBE on each group
(GROUP_AUTHORIZATION_FAILED); topics the principal may not DESCRIBE are left out of an
every-topic answer, and named ones come last, each partition TOPIC_AUTHORIZATION_FAILED.

Order, as GroupCoordinatorService.computeShareGroupLagAndBuildResponse answers (confirmed on
the reference broker): first the topics that exist, as DefaultStatePersister.readSummary's
HashMaps hold them (by topic id, then partition: a topic or partition named twice is one
entry), then the topics that do not exist, as named, then the refused ones. A null topic list
is asked of the persister as the coordinator's HashMap of initialized topics iterates (within
a bucket, in the order the group initialized them here).

In a cluster only a null topic list asks the group's coordinator (for the partitions the
group initialized: NOT_COORDINATOR on other nodes); named topics are read from the share
state on any node, as GroupCoordinatorService.describeShareGroupOffsets asks the persister.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import GROUP, elsewhere
from ottla.server.context import Answer, RequestContext
from ottla.server.java_hashing import chain_order, default_capacity, int_hash, java_order, uuid_hash
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, default_message
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.server.share.coordinator import StateSummary
    from ottla.wire.messages.types import (
        DescribeShareGroupOffsetsRequest,
        DescribeShareGroupOffsetsResponse,
        DescribeShareGroupOffsetsResponseDescribeShareGroupOffsetsResponseGroup,
        DescribeShareGroupOffsetsResponseDescribeShareGroupOffsetsResponsePartition,
        DescribeShareGroupOffsetsResponseDescribeShareGroupOffsetsResponseTopic,
    )

API = ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS
VERSIONS = (0, 1)


def handle(context: RequestContext, header: RequestHeader,
           request: DescribeShareGroupOffsetsRequest) -> Answer[DescribeShareGroupOffsetsResponse]:
    """Over a database the state log is read again first: other brokers write the state of
    the share-partitions whose topic partitions they lead."""
    reading = context.services.share.read_state_again()
    if reading is None:
        return _describe(context, header, request)
    return _describe_when_read(reading, context, header, request)


async def _describe_when_read(reading: Awaitable[None], context: RequestContext, header: RequestHeader,
                              request: DescribeShareGroupOffsetsRequest) -> DescribeShareGroupOffsetsResponse:
    await reading
    return _describe(context, header, request)


def _describe(context: RequestContext, header: RequestHeader, request: DescribeShareGroupOffsetsRequest) -> DescribeShareGroupOffsetsResponse:
    groups = []
    for wanted in request["groups"]:
        group_id = wanted["group_id"]
        group = context.services.share.groups.get(group_id)
        entry: DescribeShareGroupOffsetsResponseDescribeShareGroupOffsetsResponseGroup = {
            "group_id": group_id, "topics": [], "error_code": ErrorCode.NONE, "error_message": None}
        if not context.authorize(AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
            entry["error_code"] = ErrorCode.GROUP_AUTHORIZATION_FAILED
            groups.append(entry)
            continue
        topics = wanted["topics"]
        if topics is None and (moved := elsewhere(context, GROUP, group_id)) is not None:
            entry["error_code"] = moved  # the client asks its coordinator
            entry["error_message"] = default_message(moved)
            groups.append(entry)
            continue
        refused: list[DescribeShareGroupOffsetsResponseDescribeShareGroupOffsetsResponseTopic] = []
        # Topics the persister is asked about, by id, each with its partitions in asking order.
        asked: dict[bytes, tuple[str, list[int]]] = {}
        missing: list[tuple[str, list[int]]] = []
        if topics is not None:
            allowed = context.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, [topic["topic_name"] for topic in topics])
            refused = [_refused(topic["topic_name"], topic["partitions"], header.api_version)
                       for topic in topics if topic["topic_name"] not in allowed]
            for topic in topics:
                name = topic["topic_name"]
                if name not in allowed:
                    continue
                info = context.storage.topic(name)
                if info is None:
                    missing.append((name, topic["partitions"]))
                else:
                    asked.setdefault(info.topic_id, (name, []))[1].extend(topic["partitions"])
        else:
            # GroupCoordinatorShard.initializedShareGroupPartitions: the partitions whose share
            # state the group initialized, fetched from or not (start offset -1 until then).
            initialized = {} if group is None else group.initialized
            for topic_id in java_order(list(initialized), uuid_hash, default_capacity(len(initialized))):
                info = context.storage.topic_by_id(topic_id)
                if info is not None and context.authorize(AclOperation.DESCRIBE, ResourceType.TOPIC, info.name):
                    asked[topic_id] = (info.name, sorted(initialized[topic_id]))
        starts = context.services.share.state_summaries(group_id)
        entry["topics"] = [*(_topic(context, starts, name, indexes, header.api_version) for name, indexes in _persister_order(asked)),
                           *(_topic(context, starts, name, indexes, header.api_version) for name, indexes in missing), *refused]
        groups.append(entry)
    return {"throttle_time_ms": 0, "groups": groups}


def _persister_order(asked: dict[bytes, tuple[str, list[int]]]) -> list[tuple[str, list[int]]]:
    """The order GroupCoordinatorService.computeShareGroupLagAndBuildResponse answers in: that
    of DefaultStatePersister.readSummary's result, a HashMap by topic id of HashMaps by
    partition, each filled by computeIfAbsent in asking order (so a partition named twice is
    answered once)."""
    ordered = chain_order([(topic_id, True) for topic_id in asked], uuid_hash, _filled_capacity(len(asked)))
    answered: list[tuple[str, list[int]]] = []
    for topic_id in ordered:
        name, indexes = asked[topic_id]
        distinct = list(dict.fromkeys(indexes))
        answered.append((name, chain_order([(index, True) for index in distinct], int_hash, _filled_capacity(len(distinct)))))
    return answered


def _filled_capacity(size: int) -> int:
    """Buckets of a `new HashMap<>()` after `size` computeIfAbsent insertions, which resize
    before inserting only once already past 3/4 full."""
    return default_capacity(max(size - 1, 0))


def _refused(name: str, indexes: list[int], version: int) -> DescribeShareGroupOffsetsResponseDescribeShareGroupOffsetsResponseTopic:
    partitions: list[DescribeShareGroupOffsetsResponseDescribeShareGroupOffsetsResponsePartition] = []
    for index in indexes:
        partition: DescribeShareGroupOffsetsResponseDescribeShareGroupOffsetsResponsePartition = {
            "partition_index": index, "start_offset": -1, "leader_epoch": 0,
            "error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED, "error_message": "Topic authorization failed."}
        if version >= 1:
            partition["lag"] = -1
        partitions.append(partition)
    return {"topic_name": name, "topic_id": b"\0" * 16, "partitions": partitions}


def _topic(context: RequestContext, starts: dict[tuple[bytes, int], StateSummary], name: str, indexes: list[int],
           version: int) -> DescribeShareGroupOffsetsResponseDescribeShareGroupOffsetsResponseTopic:
    info = context.storage.topic(name)
    partitions: list[DescribeShareGroupOffsetsResponseDescribeShareGroupOffsetsResponsePartition] = []
    for index in indexes:
        start, lag, error = -1, -1, ErrorCode.NONE
        if info is None:
            pass  # GroupCoordinatorService.describeShareGroupOffsets: no state, and no error
        elif index < 0:
            error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        else:
            known = starts.get((info.topic_id, index))
            if known is not None:
                start = known.start_offset
                # GroupCoordinatorService.computeShareGroupLagAndBuildResponse: the records past
                # the start offset less those already done (deliveryCompleteCount); none for a
                # share-partition initialized without a start (shouldComputeSharePartitionLag).
                lag = -1 if start == -1 else max(context.storage.partition(name, index).high_watermark - start - known.delivery_complete, 0)
        partition: DescribeShareGroupOffsetsResponseDescribeShareGroupOffsetsResponsePartition = {"partition_index": index, "start_offset": start, "leader_epoch": 0,
                     "error_code": error, "error_message": None}
        if version >= 1:
            partition["lag"] = lag
        partitions.append(partition)
    return {"topic_name": name, "topic_id": b"\0" * 16 if info is None else info.topic_id, "partitions": partitions}
