"""Kafka record batches: RecordBatch v2 (magic 2) and legacy MessageSet v0/v1.

Format: https://kafka.apache.org/documentation/#recordbatch. One module per concern:

- `batch`: the v2 batch header as a view (Kafka's DefaultRecordBatch): layout, CRC-32C,
  validated iteration, in-place setters. All the produce path reads.
- `record`: the records inside (DefaultRecord): varints, lazy decoding, `build_batch`.
- `compression`: the four codecs with Kafka's framings, bounded inflation.
- `legacy`: magic 0 and 1 message sets (LegacyRecord), up-converted to one v2 batch.

Import from here, not from the modules: this package is the interface (and the only
part of wire/ that storage/ may use besides its errors).
"""

from ottla.wire.records.batch import (
    ATTRIBUTES,
    ATTRIBUTES_OFFSET,
    BASE_OFFSET,
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    CRC,
    CRC_OFFSET,
    DELETE_HORIZON_BIT,
    FIELD_ATTRIBUTES,
    FIELD_CRC,
    FIELD_LAST_OFFSET_DELTA,
    FIELD_MAX_TIMESTAMP,
    FIELD_PRODUCER_ID,
    LOG_OVERHEAD,
    MAGIC_OFFSET,
    MAX_TIMESTAMP,
    MAX_TIMESTAMP_OFFSET,
    NO_PRODUCER_ID,
    NO_TIMESTAMP,
    PARTITION_LEADER_EPOCH,
    PARTITION_LEADER_EPOCH_OFFSET,
    TIMESTAMP_TYPE_BIT,
    BatchHeader,
    TimestampType,
    batch_magic,
    compute_crc,
    iter_batch_fields,
    iter_batches,
    read_header,
    scan_batches,
    set_base_offset,
    set_log_append_time,
    set_partition_leader_epoch,
)
from ottla.wire.records.compression import MAX_DECOMPRESSED_BYTES, Buffer, Compression, compress, decompress
from ottla.wire.records.legacy import LEGACY_HEADER, LEGACY_LENGTH, LEGACY_TIMESTAMP, convert_legacy
from ottla.wire.records.record import Record, build_batch, iter_records, read_varint, write_varint

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTES_OFFSET",
    "BASE_OFFSET",
    "BATCH_HEADER",
    "BATCH_HEADER_SIZE",
    "CRC",
    "CRC_OFFSET",
    "DELETE_HORIZON_BIT",
    "FIELD_ATTRIBUTES",
    "FIELD_CRC",
    "FIELD_LAST_OFFSET_DELTA",
    "FIELD_MAX_TIMESTAMP",
    "FIELD_PRODUCER_ID",
    "LEGACY_HEADER",
    "LEGACY_LENGTH",
    "LEGACY_TIMESTAMP",
    "LOG_OVERHEAD",
    "MAGIC_OFFSET",
    "MAX_DECOMPRESSED_BYTES",
    "MAX_TIMESTAMP",
    "MAX_TIMESTAMP_OFFSET",
    "NO_PRODUCER_ID",
    "NO_TIMESTAMP",
    "PARTITION_LEADER_EPOCH",
    "PARTITION_LEADER_EPOCH_OFFSET",
    "TIMESTAMP_TYPE_BIT",
    "BatchHeader",
    "Buffer",
    "Compression",
    "Record",
    "TimestampType",
    "batch_magic",
    "build_batch",
    "compress",
    "compute_crc",
    "convert_legacy",
    "decompress",
    "iter_batch_fields",
    "iter_batches",
    "iter_records",
    "read_header",
    "read_varint",
    "scan_batches",
    "set_base_offset",
    "set_log_append_time",
    "set_partition_leader_epoch",
    "write_varint",
]
