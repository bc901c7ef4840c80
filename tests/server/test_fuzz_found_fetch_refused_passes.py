"""A consumer's Fetch refuses partitions in two passes, as Kafka 4.4's KafkaApis.handleFetchRequest
does (seen on the reference, seed 92 --messages, input 1163): walking the fetch context it
refuses those of an unknown topic id, then, over the rest, those of no known partition. So a
known topic's missing partition comes after an unknown topic id's, though named before it, and
the known topic gets a second entry (FetchResponse.of starts one wherever the topic changes)."""

from __future__ import annotations

import uuid
from typing import Any

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

from kafka_wire import WireClient


def _partition(index: int) -> dict[str, Any]:
    return {"partition": index, "current_leader_epoch": -1, "fetch_offset": 0, "last_fetched_epoch": -1,
            "log_start_offset": -1, "partition_max_bytes": 1 << 20}


def test_an_unknown_topic_ids_partitions_come_before_a_known_topics_missing_partition() -> None:
    topic, unknown_id = f"passes-{uuid.uuid4().hex[:8]}", uuid.uuid4().bytes
    with running_broker(data_dir=None) as broker:
        broker.create_topic(topic, 1)
        conn = WireClient(broker.bootstrap_servers)
        try:
            topic_id = conn.call(ApiKey.METADATA, 12, {"topics": [{"name": topic, "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                                       "include_topic_authorized_operations": False})["topics"][0]["topic_id"]
            answer = conn.call(ApiKey.FETCH, 13, {
                "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
                "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
                "topics": [{"topic_id": topic_id, "partitions": [_partition(0), _partition(5)]},
                           {"topic_id": unknown_id, "partitions": [_partition(0)]}]})
        finally:
            conn.close()
    layout = [(bytes(t["topic_id"]), [(p["partition_index"], p["error_code"]) for p in t["partitions"]]) for t in answer["responses"]]
    assert layout == [(bytes(topic_id), [(0, ErrorCode.NONE)]), (unknown_id, [(0, ErrorCode.UNKNOWN_TOPIC_ID)]),
                      (bytes(topic_id), [(5, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)])]
