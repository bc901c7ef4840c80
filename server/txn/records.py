"""`__transaction_state` records in Kafka's format (TransactionLogKey.json and
TransactionLogValue.json, version 0), so Kafka's own tools can read our log.

Key: int16 version, string transactional_id. Value: int16 version, int64 producer_id,
int16 producer_epoch, int32 transaction_timeout_ms, int8 transaction_status,
[string topic, [int32 partition]] transaction_partitions (nullable),
int64 transaction_last_update_timestamp_ms, int64 transaction_start_timestamp_ms.
A null value is a tombstone: the id expired.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ottla.server.coordinator.log import RecordFormatError
from ottla.server.txn.state import TxnState

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_VALUE_HEAD = struct.Struct(">hqhib")
_TIMES = struct.Struct(">qq")


@dataclass(slots=True, frozen=True)
class TxnRecord:
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState
    partitions: frozenset[tuple[str, int]]
    update_ms: int
    start_ms: int


def _string(text: str) -> bytes:
    data = text.encode()
    return _INT16.pack(len(data)) + data


def txn_key(transactional_id: str) -> bytes:
    return _INT16.pack(0) + _string(transactional_id)


def txn_value(record: TxnRecord) -> bytes:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(record.partitions):
        by_topic.setdefault(topic, []).append(partition)
    out = bytearray(_VALUE_HEAD.pack(0, record.producer_id, record.producer_epoch, record.timeout_ms, record.state.id))
    out += _INT32.pack(len(by_topic))
    for topic, partitions in by_topic.items():
        out += _string(topic) + _INT32.pack(len(partitions)) + b"".join(_INT32.pack(p) for p in partitions)
    out += _TIMES.pack(record.update_ms, record.start_ms)
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


def parse_txn_key(key: bytes) -> str:
    reader = _Reader(key)
    (version,) = reader.take(_INT16)
    if version != 0:
        raise RecordFormatError(f"unknown key version {version}")
    return reader.string()


def parse_txn_value(value: bytes) -> TxnRecord:
    reader = _Reader(value)
    version, producer_id, producer_epoch, timeout_ms, state_id = reader.take(_VALUE_HEAD)
    if version != 0:
        raise RecordFormatError(f"unknown value version {version}")
    try:
        state = TxnState.from_id(state_id)
    except ValueError as exc:
        raise RecordFormatError(str(exc)) from None
    partitions = set()
    (topics,) = reader.take(_INT32)
    for _ in range(max(topics, 0)):
        topic = reader.string()
        (count,) = reader.take(_INT32)
        for _ in range(max(count, 0)):
            partitions.add((topic, reader.take(_INT32)[0]))
    update_ms, start_ms = reader.take(_TIMES)
    return TxnRecord(producer_id, producer_epoch, timeout_ms, state, frozenset(partitions), update_ms, start_ms)
