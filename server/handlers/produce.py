"""Produce: append each partition's batches to its log and answer with the base offset.

acks=0 gets no response at all; acks=1 and acks=-1 are the same on a single node
(the leader is the whole ISR), answered once the batch is in the log. A retried
idempotent batch is answered with the offsets it was first written at and no error,
as Kafka does; the log decides (storage/producer_state.py).
"""

from __future__ import annotations

from typing import Any

from server.connection import DropConnection
from wire.api import ApiKey
from wire.errors import ErrorCode, KafkaError
from wire.records import BATCH_HEADER_SIZE, read_header

API = ApiKey.PRODUCE
VERSIONS = (0, 11)


def handle(broker, header, request: dict[str, Any]) -> dict[str, Any] | None:
    acks = request["acks"]
    storage = broker.storage
    responses = []
    for topic in request["topic_data"]:
        name = topic["name"]
        results = []
        for partition in topic["partition_data"]:
            index = partition["index"]
            result = {"index": index, "error_code": ErrorCode.NONE, "base_offset": -1, "log_append_time_ms": -1, "log_start_offset": -1}
            records = partition["records"]
            try:
                if acks not in (-1, 0, 1):
                    raise KafkaError(ErrorCode.INVALID_REQUIRED_ACKS)
                if records is None or not len(records):
                    raise KafkaError(ErrorCode.INVALID_RECORD, "a produce request must carry a record batch")
                log = storage.partition(name, index)
                appended = log.append(records)
            except KafkaError as exc:
                result["error_code"] = exc.code
                result["error_message"] = exc.message
            else:
                result["base_offset"] = appended.base_offset
                result["log_append_time_ms"] = appended.log_append_time_ms
                result["log_start_offset"] = appended.log_start_offset
                broker.notify_data(name, index)
            results.append(result)
        responses.append({"name": name, "partition_responses": results})
    if acks == 0:
        return None
    if broker.config["test.produce.drop.response.every"] and _carries_producer_id(request) and broker.drop_this_produce_response():
        raise DropConnection("test.produce.drop.response.every: written, left unanswered so the client retries")
    return {"responses": responses, "throttle_time_ms": 0}


def _carries_producer_id(request: dict[str, Any]) -> bool:
    for topic in request["topic_data"]:
        for partition in topic["partition_data"]:
            records = partition["records"]
            if records is not None and len(records) >= BATCH_HEADER_SIZE and read_header(records).producer_id >= 0:
                return True
    return False
