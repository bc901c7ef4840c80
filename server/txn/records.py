"""`__transaction_state` records in Kafka's format (TransactionLogKey.json and
TransactionLogValue.json), so Kafka's own tools can read our log.

Key: int16 version 0, string transactional_id. Value: int16 version, int64 producer_id,
int16 producer_epoch, int32 transaction_timeout_ms, int8 transaction_status,
[string topic, [int32 partition]] transaction_partitions (nullable, null when Empty),
int64 transaction_last_update_timestamp_ms, int64 transaction_start_timestamp_ms.
Version 1 is the flexible form of the same (compact arrays and strings) with tagged
fields: 0 PreviousProducerId, 1 NextProducerId, 2 ClientTransactionVersion,
3 NextProducerEpoch, each written only when it is not its default. Kafka writes version 1
once transaction.version >= 1 is finalized (TransactionVersion.transactionLogValueVersion),
and a client's transaction version lives only there: version 0 forgets it.
A null value is a tombstone: the id expired.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ottla.server.coordinator.log import RecordFormatError
from ottla.server.txn.state import TxnState
from ottla.wire.primitives import encode_uvarint

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_VALUE_HEAD = struct.Struct(">hqhib")
_TIMES = struct.Struct(">qq")
_INT64 = struct.Struct(">q")

# The tagged fields of value version 1: tag -> (layout, default), in tag order.
_PREVIOUS_PRODUCER_ID, _NEXT_PRODUCER_ID, _CLIENT_TRANSACTION_VERSION, _NEXT_PRODUCER_EPOCH = 0, 1, 2, 3
_TAGGED: dict[int, tuple[struct.Struct, int]] = {
    _PREVIOUS_PRODUCER_ID: (_INT64, -1),
    _NEXT_PRODUCER_ID: (_INT64, -1),
    _CLIENT_TRANSACTION_VERSION: (_INT16, 0),
    _NEXT_PRODUCER_EPOCH: (_INT16, -1),
}


@dataclass(slots=True, frozen=True)
class TxnRecord:
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState
    partitions: frozenset[tuple[str, int]]
    update_ms: int
    start_ms: int
    # The transaction version of the client that opened the transaction (2: KIP-890 part 2).
    client_transaction_version: int = 0
    # The producer id before the last epoch exhaustion moved to a new one: a retried end of
    # the transaction that exhausted it names this one.
    previous_producer_id: int = -1
    next_producer_id: int = -1
    next_producer_epoch: int = -1


def _string(text: str) -> bytes:
    data = text.encode()
    return _INT16.pack(len(data)) + data


def txn_key(transactional_id: str) -> bytes:
    return _INT16.pack(0) + _string(transactional_id)


def txn_value(record: TxnRecord, version: int = 0) -> bytes:
    """The value in `version` 0 or 1 (see the module docstring)."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(record.partitions):
        by_topic.setdefault(topic, []).append(partition)
    out = bytearray(_VALUE_HEAD.pack(version, record.producer_id, record.producer_epoch, record.timeout_ms, record.state.id))
    empty = record.state is TxnState.EMPTY
    if version == 0:
        out += _INT32.pack(-1 if empty else len(by_topic))
        for topic, partitions in by_topic.items():
            out += _string(topic) + _INT32.pack(len(partitions)) + b"".join(_INT32.pack(p) for p in partitions)
        out += _TIMES.pack(record.update_ms, record.start_ms)
        return bytes(out)
    out += encode_uvarint(0 if empty else len(by_topic) + 1)
    for topic, partitions in by_topic.items():
        data = topic.encode()
        out += encode_uvarint(len(data) + 1) + data + encode_uvarint(len(partitions) + 1)
        out += b"".join(_INT32.pack(p) for p in partitions) + b"\x00"  # no tagged fields per topic
    out += _TIMES.pack(record.update_ms, record.start_ms)
    values = {
        _PREVIOUS_PRODUCER_ID: record.previous_producer_id,
        _NEXT_PRODUCER_ID: record.next_producer_id,
        _CLIENT_TRANSACTION_VERSION: record.client_transaction_version,
        _NEXT_PRODUCER_EPOCH: record.next_producer_epoch,
    }
    tagged = [(tag, layout.pack(values[tag])) for tag, (layout, default) in _TAGGED.items() if values[tag] != default]
    out += encode_uvarint(len(tagged))
    for tag, data in tagged:
        out += encode_uvarint(tag) + encode_uvarint(len(data)) + data
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def take(self, layout: struct.Struct) -> tuple[int, ...]:
        if self.position + layout.size > len(self.data):
            raise RecordFormatError("record ends early")
        values = layout.unpack_from(self.data, self.position)
        self.position += layout.size
        return values

    def string(self) -> str:
        (length,) = self.take(_INT16)
        if length < 0 or self.position + length > len(self.data):
            raise RecordFormatError("bad string length")
        text = self.data[self.position : self.position + length].decode()
        self.position += length
        return text

    def uvarint(self) -> int:
        result = shift = 0
        for _ in range(5):
            if self.position >= len(self.data):
                raise RecordFormatError("varint runs past the end")
            byte = self.data[self.position]
            self.position += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
        raise RecordFormatError("varint longer than 5 bytes")

    def compact_string(self) -> str:
        length = self.uvarint() - 1
        if length < 0 or self.position + length > len(self.data):
            raise RecordFormatError("bad string length")
        text = self.data[self.position : self.position + length].decode()
        self.position += length
        return text

    def skip_tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.skip(self.uvarint())

    def skip(self, length: int) -> None:
        if self.position + length > len(self.data):
            raise RecordFormatError("record ends early")
        self.position += length


def parse_txn_key(key: bytes) -> str:
    reader = _Reader(key)
    (version,) = reader.take(_INT16)
    if version != 0:
        raise RecordFormatError(f"unknown key version {version}")
    return reader.string()


def parse_txn_value(value: bytes) -> TxnRecord:
    """Versions 0 and 1; tagged fields Kafka adds later are skipped, as its readers do."""
    reader = _Reader(value)
    version, producer_id, producer_epoch, timeout_ms, state_id = reader.take(_VALUE_HEAD)
    if version not in (0, 1):
        raise RecordFormatError(f"unknown value version {version}")
    try:
        state = TxnState.from_id(state_id)
    except ValueError as exc:
        raise RecordFormatError(str(exc)) from None
    partitions = set()
    if version == 0:
        (topics,) = reader.take(_INT32)
        for _ in range(max(topics, 0)):
            topic = reader.string()
            (count,) = reader.take(_INT32)
            for _ in range(max(count, 0)):
                partitions.add((topic, reader.take(_INT32)[0]))
        update_ms, start_ms = reader.take(_TIMES)
        return TxnRecord(producer_id, producer_epoch, timeout_ms, state, frozenset(partitions), update_ms, start_ms)
    for _ in range(max(reader.uvarint() - 1, 0)):
        topic = reader.compact_string()
        for _ in range(max(reader.uvarint() - 1, 0)):
            partitions.add((topic, reader.take(_INT32)[0]))
        reader.skip_tagged_fields()
    update_ms, start_ms = reader.take(_TIMES)
    tagged = {tag: default for tag, (_, default) in _TAGGED.items()}
    for _ in range(reader.uvarint()):
        tag, size = reader.uvarint(), reader.uvarint()
        known = _TAGGED.get(tag)
        if known is None or known[0].size != size:
            reader.skip(size)
            continue
        (tagged[tag],) = reader.take(known[0])
    return TxnRecord(
        producer_id, producer_epoch, timeout_ms, state, frozenset(partitions), update_ms, start_ms,
        client_transaction_version=tagged[_CLIENT_TRANSACTION_VERSION],
        previous_producer_id=tagged[_PREVIOUS_PRODUCER_ID],
        next_producer_id=tagged[_NEXT_PRODUCER_ID],
        next_producer_epoch=tagged[_NEXT_PRODUCER_EPOCH],
    )
