"""Per-topic log settings: Kafka's topic config keys, defaults from Kafka's LogConfig."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ottla.wire.errors import ErrorCode, KafkaError

NO_RECORD_SIZE_LIMIT = 2**31 - 9

DEFAULTS: dict[str, str] = {
    "segment.bytes": str(1 << 30),
    "segment.ms": str(7 * 24 * 3600 * 1000),
    "segment.index.bytes": str(10 * 1024 * 1024),
    "index.interval.bytes": "4096",
    "retention.ms": str(7 * 24 * 3600 * 1000),
    "retention.bytes": "-1",
    "max.message.bytes": "1048588",
    "message.timestamp.type": "CreateTime",
    "message.timestamp.before.max.ms": str((1 << 63) - 1),
    # KIP-1030 made Kafka 4.0 reject records stamped more than an hour ahead of the broker.
    "message.timestamp.after.max.ms": "3600000",
    "cleanup.policy": "delete",
    "delete.retention.ms": str(24 * 3600 * 1000),
    "min.compaction.lag.ms": "0",
    "max.compaction.lag.ms": str((1 << 63) - 1),
    "min.cleanable.dirty.ratio": "0.5",
    "file.delete.delay.ms": "60000",
    "flush.messages": str((1 << 63) - 1),
    "flush.ms": str((1 << 63) - 1),
    # "producer" keeps each batch as the producer compressed it; a codec name (or
    # "uncompressed") makes the broker recompress batches that differ, as Kafka's LogValidator does.
    "compression.type": "producer",
    # Kafka 4.4: the default is the largest array the JVM allocates, i.e. no limit of its own.
    "max.decompressed.message.bytes": str(NO_RECORD_SIZE_LIMIT),
}
_COMPRESSION_TYPES = {"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"}

_POLICIES = {"delete", "compact"}
_TIMESTAMP_TYPES = {"CreateTime", "LogAppendTime"}


@dataclass(slots=True, frozen=True)
class LogConfig:
    """The settings a partition log reads, parsed once from the topic's overrides."""

    segment_bytes: int
    segment_ms: int
    segment_index_bytes: int
    index_interval_bytes: int
    retention_ms: int
    retention_bytes: int
    max_message_bytes: int
    log_append_time: bool
    timestamp_before_max_ms: int
    timestamp_after_max_ms: int
    compact: bool
    delete: bool
    delete_retention_ms: int
    min_compaction_lag_ms: int
    min_cleanable_dirty_ratio: float
    max_compaction_lag_ms: int
    flush_messages: int
    flush_ms: int
    compression_type: str = "producer"
    max_decompressed_message_bytes: int = NO_RECORD_SIZE_LIMIT
    file_delete_delay_ms: int = 60000

    @property
    def limits_record_size(self) -> bool:
        """Whether appends must walk compressed records to hold them to max.decompressed.message.bytes."""
        return self.max_decompressed_message_bytes < NO_RECORD_SIZE_LIMIT

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, str]) -> LogConfig:
        """Parse topic overrides over Kafka's defaults; a bad value is INVALID_CONFIG."""
        merged = {**DEFAULTS, **overrides}
        try:
            # An empty list means no cleanup at all: infinite retention (KAFKA-19112).
            policies = {policy.strip() for policy in merged["cleanup.policy"].split(",") if policy.strip()}
            if not policies <= _POLICIES or merged["message.timestamp.type"] not in _TIMESTAMP_TYPES or merged["compression.type"] not in _COMPRESSION_TYPES:
                raise ValueError(merged["cleanup.policy"], merged["message.timestamp.type"], merged["compression.type"])
            config = cls(
                segment_bytes=int(merged["segment.bytes"]),
                segment_ms=int(merged["segment.ms"]),
                segment_index_bytes=int(merged["segment.index.bytes"]),
                index_interval_bytes=int(merged["index.interval.bytes"]),
                retention_ms=int(merged["retention.ms"]),
                retention_bytes=int(merged["retention.bytes"]),
                max_message_bytes=int(merged["max.message.bytes"]),
                log_append_time=merged["message.timestamp.type"] == "LogAppendTime",
                timestamp_before_max_ms=int(merged["message.timestamp.before.max.ms"]),
                timestamp_after_max_ms=int(merged["message.timestamp.after.max.ms"]),
                compact="compact" in policies,
                delete="delete" in policies,
                delete_retention_ms=int(merged["delete.retention.ms"]),
                min_compaction_lag_ms=int(merged["min.compaction.lag.ms"]),
                min_cleanable_dirty_ratio=float(merged["min.cleanable.dirty.ratio"]),
                max_compaction_lag_ms=int(merged["max.compaction.lag.ms"]),
                flush_messages=int(merged["flush.messages"]),
                flush_ms=int(merged["flush.ms"]),
                compression_type=merged["compression.type"],
                max_decompressed_message_bytes=int(merged["max.decompressed.message.bytes"]),
                file_delete_delay_ms=int(merged["file.delete.delay.ms"]),
            )
        except ValueError as error:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"invalid topic config: {error}") from error
        # Kafka's LogConfig: segment.bytes has a 14-byte floor (one legacy message header).
        if (
            config.segment_bytes < 14
            or config.segment_ms < 1
            or config.index_interval_bytes < 0
            or config.segment_index_bytes < 12  # room for one entry of either index
        ):
            raise KafkaError(ErrorCode.INVALID_CONFIG, "segment or index setting out of range")
        return config
