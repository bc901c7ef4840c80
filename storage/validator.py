"""The record rules of Kafka's LogValidator, with its per-record errors (KIP-467).

A batch that breaks a rule in some of its records is refused whole, but the answer names
those records: `RecordValidationError` carries one `RecordError` (the record's index in its
batch and why) for each, and the partition's code is INVALID_TIMESTAMP when any record broke
a timestamp rule, INVALID_RECORD otherwise. Clients fail the named records and may retry
the rest (Produce v8+ answers `record_errors`). Kafka's rules, in its order, at most one
error a record (LogValidator.validateRecord):

- a compacted topic refuses a record without a key;
- on a CreateTime topic, a record's timestamp (unless -1) lies within
  [now - message.timestamp.before.max.ms, now + message.timestamp.after.max.ms];
- otherwise a batch may not claim LogAppendTime: the broker's clock stamps those.

Bytes that do not decode as records are not per-record errors: the whole batch is
INVALID_RECORD without `record_errors`. Divergence: Kafka walks the records of every batch,
so it finds such bytes in any topic; we walk them only where a rule may fail
(`RecordRules.needs_walk`) and otherwise trust the batch CRC.

Messages are Kafka 4.4.0's, word for word (clients show them to users), with Java's long
arithmetic for the bounds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ottla.storage.config import LogConfig
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import NO_TIMESTAMP, TIMESTAMP_TYPE_BIT, BatchHeader, Buffer, Compression, Record, build_batch, iter_batches, iter_records

_CODECS = {"uncompressed": Compression.NONE, "gzip": Compression.GZIP, "snappy": Compression.SNAPPY, "lz4": Compression.LZ4, "zstd": Compression.ZSTD}
_LONG = 1 << 64
_LONG_MIN = 1 << 63


def _java_long(value: int) -> int:
    """`value` as Java's long arithmetic leaves it (wrapped to 64 bits, signed)."""
    return (value + _LONG_MIN) % _LONG - _LONG_MIN


@dataclass(slots=True, frozen=True)
class RecordError:
    """Kafka's ProduceResponse.RecordError: the record's index in its batch and why."""

    batch_index: int
    message: str

    def __str__(self) -> str:
        # RecordError.toString, which the summary message lists.
        return f"RecordError(batchIndex={self.batch_index}, message='{self.message}')"


class RecordValidationError(KafkaError):
    """Kafka's RecordValidationException: the batch is refused for the records named."""

    def __init__(self, code: ErrorCode, message: str, record_errors: tuple[RecordError, ...]) -> None:
        super().__init__(code, message)
        self.record_errors = record_errors


@dataclass(slots=True, frozen=True)
class RecordRules:
    """What a topic's config asks of each record of one partition; built once per config."""

    topic_partition: str  # "<topic>-<partition>", as Kafka's TopicPartition prints
    compacted: bool
    log_append_time: bool
    before_max_ms: int
    after_max_ms: int
    max_record_bytes: int | None  # max.decompressed.message.bytes when set, checked by iter_records

    @classmethod
    def of(cls, config: LogConfig, topic_partition: str) -> RecordRules:
        return cls(
            topic_partition,
            config.compact,
            config.log_append_time,
            config.timestamp_before_max_ms,
            config.timestamp_after_max_ms,
            config.max_decompressed_message_bytes if config.limits_record_size else None,
        )

    def needs_walk(self, attributes: int, max_timestamp: int, now_ms: int) -> bool:
        """Whether some record of a batch with this header may break a rule: keys matter, a
        timestamp past the batch's max is too far ahead, the earliest allowed time is past 0,
        or the batch claims LogAppendTime. A false answer costs no record walk.

        Divergence: Kafka checks every record's timestamp; we trust the header's max for the
        upper bound, and let records stamped before 0 (other than -1) through when
        message.timestamp.before.max.ms exceeds the clock."""
        if self.compacted or self.max_record_bytes is not None or attributes & TIMESTAMP_TYPE_BIT:
            return True
        if self.log_append_time:
            return False
        return max_timestamp - now_ms > self.after_max_ms or now_ms - self.before_max_ms > 0

    def check(self, batch: Buffer, attributes: int, now_ms: int) -> None:
        """Walk the batch's records; raise RecordValidationError naming each that breaks a rule."""
        log_append_time_batch = bool(attributes & TIMESTAMP_TYPE_BIT)
        errors: list[tuple[ErrorCode, RecordError]] = []
        try:
            for index, record in enumerate(iter_records(batch, self.max_record_bytes)):
                error = self._record_error(record, index, log_append_time_batch, now_ms)
                if error is not None:
                    errors.append(error)
        except KafkaError as undecodable:
            # Kafka's DefaultRecord.readFrom throws InvalidRecordException for a record it cannot read.
            raise KafkaError(ErrorCode.INVALID_RECORD, undecodable.message) from None
        if not errors:
            return
        record_errors = tuple(error for _, error in errors)
        # LogValidator.processRecordErrors: one timestamp error makes the batch's code INVALID_TIMESTAMP.
        if any(code is ErrorCode.INVALID_TIMESTAMP for code, _ in errors):
            raise RecordValidationError(
                ErrorCode.INVALID_TIMESTAMP, "One or more records have been rejected due to invalid timestamp", record_errors
            )
        shown = ", ".join(str(error) for error in record_errors[:3])
        raise RecordValidationError(
            ErrorCode.INVALID_RECORD,
            f"One or more records have been rejected due to {len(record_errors)} record errors in total, "
            f"and only showing the first three errors at most: [{shown}]",
            record_errors,
        )

    def _record_error(self, record: Record, index: int, log_append_time_batch: bool, now_ms: int) -> tuple[ErrorCode, RecordError] | None:
        if self.compacted and record.key is None:
            message = f"Compacted topic cannot accept message without key in topic partition {self.topic_partition}"
            return ErrorCode.INVALID_RECORD, RecordError(index, message)
        if not self.log_append_time and record.timestamp != NO_TIMESTAMP:
            difference = _java_long(now_ms - record.timestamp)
            if difference > self.before_max_ms or _java_long(-difference) > self.after_max_ms:
                earliest, latest = _java_long(now_ms - self.before_max_ms), _java_long(now_ms + self.after_max_ms)
                message = (
                    f"Timestamp {record.timestamp} of message with offset {record.offset} is out of range. "
                    f"The timestamp should be within [{earliest}, {latest}]"
                )
                return ErrorCode.INVALID_TIMESTAMP, RecordError(index, message)
        elif log_append_time_batch:
            key_bytes = 0 if record.key is None else len(record.key)
            value_bytes = 0 if record.value is None else len(record.value)
            described = f"DefaultRecord(offset={record.offset}, timestamp={record.timestamp}, key={key_bytes} bytes, value={value_bytes} bytes)"
            message = f"Invalid timestamp type in message {described}. Producer should not set timestamp type to LogAppendTime."
            return ErrorCode.INVALID_TIMESTAMP, RecordError(index, message)
        return None


def recompress(data: bytearray | memoryview, compression_type: str, from_client: bool, max_message_bytes: int) -> bytearray | memoryview:
    """A topic's compression.type other than "producer": batches in another codec are
    rebuilt in the topic's, as Kafka's LogValidator does (producer id, epoch, sequence,
    transactional flag and timestamps kept); the rest stay as sent, and so does everything
    under "producer". A rebuilt batch's records are numbered one by one from its base offset,
    whatever offset deltas they came with (LogValidator.buildRecordsAndAssignOffsets), so none
    can take an offset of the next batch. Control batches are the broker's own and stay
    uncompressed. A batch larger than max.message.bytes as sent is MESSAGE_SIZE_TOO_LARGE
    before any is rebuilt, as UnifiedLog.analyzeAndValidateRecords judges what was sent.
    Both engines store what this returns."""
    if compression_type == "producer":
        return data
    codec = _CODECS[compression_type]
    batches = list(iter_batches(data, from_client=from_client))
    for header, _ in batches:
        if header.size > max_message_bytes:
            raise KafkaError(ErrorCode.MESSAGE_SIZE_TOO_LARGE, f"batch of {header.size} bytes exceeds max.message.bytes")
    if all(header.compression is codec or header.is_control for header, _ in batches):
        return data
    out = bytearray()
    for header, batch in batches:
        if header.compression is codec or header.is_control:
            out += batch
            continue
        try:
            records = [replace(record, offset=header.base_offset + index) for index, record in enumerate(iter_records(batch))]
        except KafkaError as undecodable:
            # As in `RecordRules.check`: a record Kafka's DefaultRecord.readFrom cannot read.
            raise KafkaError(ErrorCode.INVALID_RECORD, undecodable.message) from None
        out += rebuild_batch(header, records, codec)
    return out


def rebuild_batch(header: BatchHeader, records: list[Record], compression: Compression, delete_horizon_ms: int | None = None) -> bytes:
    """The batch `header` heads, made anew of `records` in `compression`: its base and last
    offset, producer id, epoch and base sequence, transactional and control flags, timestamp
    type and leader epoch kept (Kafka's MemoryRecords.filterTo and LogValidator keep them too),
    with `delete_horizon_ms` when the cleaner stamps one. LogAppendTime batches report their max
    timestamp for every record, so their timestamps are kept as well."""
    return build_batch(
        records,
        base_offset=header.base_offset,
        compression=compression,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
        transactional=header.is_transactional,
        control=header.is_control,
        timestamp_type=header.timestamp_type,
        partition_leader_epoch=header.partition_leader_epoch,
        last_offset=header.last_offset,
        delete_horizon_ms=delete_horizon_ms,
    )
