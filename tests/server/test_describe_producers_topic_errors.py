"""DescribeProducers judges each topic before its partitions, as Kafka 4.4's
KafkaApis.handleDescribeProducersRequest does, and those topic errors carry their message
(ApiError): an illegal name INVALID_TOPIC in Topic.validate's words, an unknown topic
UNKNOWN_TOPIC_OR_PARTITION's message; a partition past a known topic's last has none.
Expected answers are the reference broker's. Raw requests to a real broker."""

from __future__ import annotations

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records.record import Record, build_batch


def test_topic_errors_carry_kafkas_messages() -> None:
    names = ["bad name!", "x" * 250, ".", "..", "", "absent", "known"]
    with running_broker() as broker:
        broker.create_topic("known", partitions=1)
        answer = _Connection(broker.bootstrap_servers).call(ApiKey.DESCRIBE_PRODUCERS, 0, {
            "topics": [{"name": name, "partition_indexes": [0, 3] if name == "known" else [0]} for name in names]})
    found = [(p["partition_index"], p["error_code"], p["error_message"]) for t in answer["topics"] for p in t["partitions"]]
    assert found == [
        (0, ErrorCode.INVALID_TOPIC,
         "Topic name is invalid: 'bad name!' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"),
        (0, ErrorCode.INVALID_TOPIC, f"Topic name is invalid: the length of '{'x' * 250}' is longer than the max allowed length 249"),
        (0, ErrorCode.INVALID_TOPIC, "Topic name is invalid: '.' is not allowed"),
        (0, ErrorCode.INVALID_TOPIC, "Topic name is invalid: '..' is not allowed"),
        (0, ErrorCode.INVALID_TOPIC, "Topic name is invalid: the empty string is not allowed"),
        (0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition."),
        (0, ErrorCode.NONE, None),
        (3, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None),
    ]


def test_last_timestamp_is_the_latest_batchs_even_when_earlier() -> None:
    """ProducerStateEntry.addBatch assigns the batch's max timestamp: the reference Kafka 4.4
    answered the second of two idempotent batches' timestamps though it was the smaller."""
    with running_broker(data_dir=None) as broker:
        broker.create_topic("stamped", partitions=1)
        connection = _Connection(broker.bootstrap_servers)
        producer = connection.call(ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": None, "transaction_timeout_ms": 60_000, "producer_id": -1, "producer_epoch": -1})
        for sequence, timestamp in enumerate((1_700_000_000_001, 1_700_000_000_000)):
            batch = build_batch([Record(0, timestamp, b"k", b"v")], producer_id=producer["producer_id"], producer_epoch=producer["producer_epoch"], base_sequence=sequence)
            produced = connection.call(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000,
                                                           "topic_data": [{"name": "stamped", "partition_data": [{"index": 0, "records": batch}]}]})
            assert produced["responses"][0]["partition_responses"][0]["error_code"] == ErrorCode.NONE
        answer = connection.call(ApiKey.DESCRIBE_PRODUCERS, 0, {"topics": [{"name": "stamped", "partition_indexes": [0]}]})
    [state] = answer["topics"][0]["partitions"][0]["active_producers"]
    assert state["last_timestamp"] == 1_700_000_000_000
