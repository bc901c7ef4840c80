"""DeleteRecords: move each partition's log start offset up (offset -1: to the high
watermark); storage drops the segments wholly below it and keeps the new start across restarts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
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


def handle(context: RequestContext, header: RequestHeader, request: DeleteRecordsRequest) -> DeleteRecordsResponse:
    topics: list[DeleteRecordsResponseDeleteRecordsTopicResult] = []
    for topic in request["topics"]:
        partitions: list[DeleteRecordsResponseDeleteRecordsPartitionResult] = []
        for wanted in topic["partitions"]:
            entry: DeleteRecordsResponseDeleteRecordsPartitionResult = {"partition_index": wanted["partition_index"], "low_watermark": -1, "error_code": ErrorCode.NONE}
            try:
                log = context.storage.partition(topic["name"], wanted["partition_index"])
                entry["low_watermark"] = log.delete_records(wanted["offset"])
            except KafkaError as exc:
                entry["error_code"] = exc.code
            partitions.append(entry)
        topics.append({"name": topic["name"], "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}
