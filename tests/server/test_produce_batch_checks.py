"""Batch checks of Kafka's produce path (UnifiedLog.analyzeAndValidateRecords), over raw
requests to a real broker: a client's batch starts at offset 0, its size is judged as sent
before the topic's codec rebuilds it, and against max.message.bytes before segment.bytes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from compat.differential import _Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records.record import Record, build_batch


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as handle:
        yield handle


def _produce(broker: ThreadedBroker, topic: str, records: bytes) -> int:
    answer = _Connection(broker.bootstrap_servers).call(ApiKey.PRODUCE, 9, {
        "transactional_id": None, "acks": -1, "timeout_ms": 5000,
        "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": records}]}],
    })
    return int(answer["responses"][0]["partition_responses"][0]["error_code"])


def _batch(value_bytes: int, base_offset: int = 0) -> bytes:
    return build_batch([Record(base_offset, 1000, b"k", bytes(value_bytes))], base_offset=base_offset)


def test_a_clients_batch_starts_at_offset_0(broker: ThreadedBroker) -> None:
    broker.create_topic("plain")
    assert _produce(broker, "plain", _batch(10, base_offset=5)) == ErrorCode.INVALID_RECORD
    assert _produce(broker, "plain", _batch(10)) == ErrorCode.NONE


def test_max_message_bytes_judges_the_batch_as_sent_before_the_topic_compresses_it(broker: ThreadedBroker) -> None:
    broker.create_topic("zipped", compression_type="gzip", max_message_bytes="1500")
    assert _produce(broker, "zipped", _batch(2200)) == ErrorCode.MESSAGE_SIZE_TOO_LARGE  # zeros: far smaller once gzipped
    assert _produce(broker, "zipped", _batch(1000)) == ErrorCode.NONE


def test_a_batch_past_max_message_bytes_is_too_large_before_it_is_past_segment_bytes(broker: ThreadedBroker) -> None:
    broker.create_topic("segmented", segment_bytes=str(1 << 20))
    assert _produce(broker, "segmented", _batch(1_200_000)) == ErrorCode.MESSAGE_SIZE_TOO_LARGE


def test_a_record_the_topics_codec_cannot_read_is_an_invalid_record(broker: ThreadedBroker) -> None:
    """A batch with a valid CRC whose record is malformed, to a topic that recompresses it:
    INVALID_RECORD (DefaultRecord.readFrom's InvalidRecordException), not CORRUPT_MESSAGE."""
    from crc32c import crc32c

    broker.create_topic("regzipped", compression_type="gzip")
    batch = bytearray(_batch(100))
    batch[61] = 0x7F  # the record's length varint: far past the batch's end
    batch[17:21] = crc32c(bytes(batch[21:])).to_bytes(4, "big")
    assert _produce(broker, "regzipped", bytes(batch)) == ErrorCode.INVALID_RECORD
