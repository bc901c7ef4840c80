"""TxnOffsetCommit: offsets written inside a transaction, visible to OffsetFetch only once
it commits (the group coordinator holds them pending; server/groups/coordinator.py).

The group's `__consumer_offsets` partition must be in the transaction: joined by
AddOffsetsToTxn before v5, joined by this request itself from v5, which transaction
version 2 clients send instead of AddOffsetsToTxn (KIP-890 part 2).

With an authorizer (KafkaApis.handleTxnOffsetCommitRequest): WRITE on the transactional id,
then READ on the group (else every partition carries TRANSACTIONAL_ID_ or
GROUP_AUTHORIZATION_FAILED), then READ on each topic (else TOPIC_AUTHORIZATION_FAILED)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.groups import CommitEntry
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        TxnOffsetCommitRequest,
        TxnOffsetCommitResponse,
        TxnOffsetCommitResponseTxnOffsetCommitResponsePartition,
        TxnOffsetCommitResponseTxnOffsetCommitResponseTopic,
    )

API = ApiKey.TXN_OFFSET_COMMIT
VERSIONS = (0, 5)


def handle(context: RequestContext, header: RequestHeader, request: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse:
    storage = context.storage
    group_id = request["group_id"]
    allowed: set[str] | None = None
    if not context.authorize(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, request["transactional_id"]):
        error = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    elif not context.authorize(AclOperation.READ, ResourceType.GROUP, group_id):
        error = ErrorCode.GROUP_AUTHORIZATION_FAILED
    else:
        if context.authorizer is not None:
            allowed = context.authorized(AclOperation.READ, ResourceType.TOPIC, (topic["name"] for topic in request["topics"]))
        error = context.txn.check_offsets_commit(
            request["transactional_id"], request["producer_id"], request["producer_epoch"], group_id, header.api_version
        )
    entries: list[CommitEntry] = []
    slots: list[tuple[TxnOffsetCommitResponseTxnOffsetCommitResponsePartition, int]] = []
    topics: list[TxnOffsetCommitResponseTxnOffsetCommitResponseTopic] = []
    for topic in request["topics"]:
        name = topic["name"]
        info = storage.topic(name)
        topic_error = ErrorCode.TOPIC_AUTHORIZATION_FAILED if allowed is not None and name not in allowed else error
        partitions: list[TxnOffsetCommitResponseTxnOffsetCommitResponsePartition] = []
        for partition in topic["partitions"]:
            index = partition["partition_index"]
            answer: TxnOffsetCommitResponseTxnOffsetCommitResponsePartition = {"partition_index": index, "error_code": topic_error}
            if topic_error is ErrorCode.NONE:
                if info is None or not 0 <= index < info.partitions:
                    answer["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                else:
                    slots.append((answer, len(entries)))
                    entries.append(
                        CommitEntry(name, index, partition["committed_offset"], partition.get("committed_leader_epoch", -1), partition["committed_metadata"])
                    )
            partitions.append(answer)
        topics.append({"name": name, "partitions": partitions})
    if entries:
        errors = context.groups.commit_transactional_offsets(
            group_id,
            request["producer_id"],
            request["producer_epoch"],
            request.get("generation_id", -1),
            request.get("member_id", ""),
            request.get("group_instance_id"),
            entries,
        )
        for answer, index in slots:
            answer["error_code"] = errors[index]
    return {"throttle_time_ms": 0, "topics": topics}
