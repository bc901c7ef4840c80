"""Per-record errors (KIP-467): which records of a refused batch are at fault, in Kafka 4.4's words."""

from __future__ import annotations

import pytest
from conftest import read_bytes

from ottla.storage import Storage
from ottla.storage.validator import RecordError, RecordValidationError
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import Compression, Record, TimestampType, build_batch, compute_crc

NOW = 1_700_000_000_000
HOUR = 3_600_000


def refusal(storage: Storage, topic: str, records: list[Record], **options: object) -> RecordValidationError:
    log = storage.partition(topic, 0)
    end = log.log_end_offset
    with pytest.raises(RecordValidationError) as raised:
        log.append(build_batch(records, **options), log_append_time_ms=NOW)  # type: ignore[arg-type]
    assert log.log_end_offset == end and not read_bytes(log.read(0, 1 << 20)), "a refused batch leaves the log as it was"
    return raised.value


@pytest.mark.parametrize("compression", [Compression.NONE, Compression.GZIP])
def test_a_compacted_topic_names_each_record_without_a_key(storage: Storage, compression: Compression) -> None:
    storage.create_topic("compacted", 1, {"cleanup.policy": "compact"})
    keys = [b"k0", None, b"k2", None, None, None]
    error = refusal(storage, "compacted", [Record(i, NOW, key, b"v") for i, key in enumerate(keys)], compression=compression)
    assert error.code is ErrorCode.INVALID_RECORD
    why = "Compacted topic cannot accept message without key in topic partition compacted-0"
    assert error.record_errors == tuple(RecordError(i, why) for i in (1, 3, 4, 5))
    # LogValidator.processRecordErrors: the count, then at most three of them.
    shown = ", ".join(f"RecordError(batchIndex={i}, message='{why}')" for i in (1, 3, 4))
    assert error.message == (
        "One or more records have been rejected due to 4 record errors in total, "
        f"and only showing the first three errors at most: [{shown}]"
    )


def test_timestamps_out_of_range_are_named_with_the_range(storage: Storage) -> None:
    storage.create_topic("recent", 1, {"message.timestamp.before.max.ms": "60000"})
    stamps = [NOW - 60_001, NOW - 60_000, NOW + HOUR, NOW + HOUR + 1, -1]
    error = refusal(storage, "recent", [Record(i, t, b"k", b"v") for i, t in enumerate(stamps)])
    assert error.code is ErrorCode.INVALID_TIMESTAMP
    assert error.message == "One or more records have been rejected due to invalid timestamp"
    within = f"The timestamp should be within [{NOW - 60_000}, {NOW + HOUR}]"
    assert error.record_errors == (
        RecordError(0, f"Timestamp {NOW - 60_001} of message with offset 0 is out of range. {within}"),
        RecordError(3, f"Timestamp {NOW + HOUR + 1} of message with offset 3 is out of range. {within}"),
    )


def test_default_bounds_print_as_javas_long_arithmetic(storage: Storage) -> None:
    """message.timestamp.before.max.ms defaults to Long.MAX_VALUE: Kafka prints now minus it."""
    storage.create_topic("t", 1, {"message.timestamp.after.max.ms": str(2**63 - 1)})
    storage.create_topic("ahead", 1)
    error = refusal(storage, "ahead", [Record(0, NOW, b"k", b"v"), Record(1, NOW + 2 * HOUR, b"k", b"v")])
    assert error.record_errors[0].message.endswith(f"within [{NOW - 2**63 + 1}, {NOW + HOUR}]")
    # now + Long.MAX_VALUE wraps in Java; no timestamp is too far ahead of it.
    assert storage.partition("t", 0).append(build_batch([Record(0, 2**62, b"k", b"v")]), log_append_time_ms=NOW).base_offset == 0


def test_a_key_error_and_a_timestamp_error_make_the_batch_invalid_timestamp(storage: Storage) -> None:
    storage.create_topic("compacted", 1, {"cleanup.policy": "compact"})
    records = [Record(0, NOW + 2 * HOUR, None, b"v"), Record(1, NOW, b"k", b"v"), Record(2, NOW + 2 * HOUR, b"k", b"v")]
    error = refusal(storage, "compacted", records)
    assert error.code is ErrorCode.INVALID_TIMESTAMP
    # One error a record, the key checked first.
    assert [(e.batch_index, e.message.split()[0]) for e in error.record_errors] == [(0, "Compacted"), (2, "Timestamp")]


def test_producers_may_not_claim_log_append_time(storage: Storage) -> None:
    storage.create_topic("appended", 1, {"message.timestamp.type": "LogAppendTime"})
    error = refusal(storage, "appended", [Record(0, NOW, b"k", b"vv"), Record(1, NOW, None, None)], timestamp_type=TimestampType.LOG_APPEND_TIME)
    assert error.code is ErrorCode.INVALID_TIMESTAMP
    rest = "Producer should not set timestamp type to LogAppendTime."
    assert error.record_errors == (
        RecordError(0, f"Invalid timestamp type in message DefaultRecord(offset=0, timestamp={NOW}, key=1 bytes, value=2 bytes). {rest}"),
        RecordError(1, f"Invalid timestamp type in message DefaultRecord(offset=1, timestamp={NOW}, key=0 bytes, value=0 bytes). {rest}"),
    )


def test_a_record_that_does_not_decode_fails_its_batch_without_record_errors(storage: Storage) -> None:
    """Kafka's DefaultRecord.readFrom: INVALID_RECORD, nothing to name (a header key is never null)."""
    storage.create_topic("compacted", 1, {"cleanup.policy": "compact"})
    data = bytearray(build_batch([Record(0, NOW, b"k", b"v", (("h", b"x"),))]))
    header_key_length = data.rindex(b"\x02h")  # varint 1, then the key's byte
    data[header_key_length : header_key_length + 2] = b"\x01\x00"  # varint -1: a null key, padded
    data[17:21] = compute_crc(data).to_bytes(4, "big")
    log = storage.partition("compacted", 0)
    with pytest.raises(KafkaError) as raised:
        log.append(bytes(data), log_append_time_ms=NOW)
    assert raised.value.code is ErrorCode.INVALID_RECORD and not isinstance(raised.value, RecordValidationError)


def test_valid_batches_are_appended(storage: Storage) -> None:
    storage.create_topic("compacted", 1, {"cleanup.policy": "compact", "message.timestamp.before.max.ms": "60000"})
    log = storage.partition("compacted", 0)
    records = [Record(0, NOW - 60_000, b"a", None), Record(1, -1, b"b", b"v"), Record(2, NOW + HOUR, b"c", b"v")]
    assert log.append(build_batch(records), log_append_time_ms=NOW).last_offset == 2
