"""The share-partition state records of `__share_group_state`, in Kafka 4.4's layout
(kafka-share-coordinator's ShareSnapshotKey/Value and ShareUpdateKey/Value, framed as
ShareCoordinatorRecordSerde frames them): the key is the record type (0 snapshot, 1 update)
then group id, topic id and partition; the value is its version (0) then a flexible body.

A snapshot holds a share-partition's whole persisted state; an update, written between
snapshots, is merged over the state before it at replay, as ShareCoordinatorShard merges it.
Kafka's update holds only the batches that changed, its topic is cleanup.policy=delete and
its coordinator deletes the records no snapshot needs any more; Ottla's topic is compacted
instead, which keeps only the last update of a share-partition, so Ottla's updates hold
every batch in flight: the last snapshot and the last update always make the whole state.
A tombstone is a snapshot key without a value; an update with no snapshot before it (what
compaction leaves of a share-partition deleted long ago) is ignored.
Records Ottla wrote before this layout (JSON keys and values) are still read (`parse`),
never written."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, replace
from typing import Any

from ottla.server.coordinator import RecordFormatError
from ottla.server.share.partition import RecordState, StateBatch

SNAPSHOT, UPDATE = 0, 1
# ShareCoordinatorConfig's share.coordinator.snapshot.update.records.per.snapshot default.
UPDATES_PER_SNAPSHOT = 500
_VALUE_VERSION = 0
# RecordState ids as PersisterStateBatch stores them; ACQUIRED is never persisted.
_STATE_CODE = {RecordState.AVAILABLE: 0, RecordState.ACKNOWLEDGED: 2, RecordState.ARCHIVED: 4}
_CODE_STATE = {code: state for state, code in _STATE_CODE.items()}
_DELIVERY_COMPLETE_TAG = 0


@dataclass(slots=True, frozen=True)
class ShareState:
    """A share-partition's state as its records leave it (Kafka's ShareGroupOffset).
    `delivery_complete` is -1 when unknown (its tagged field is then left out)."""

    snapshot_epoch: int
    state_epoch: int
    leader_epoch: int
    start_offset: int
    delivery_complete: int
    create_timestamp: int
    write_timestamp: int
    batches: tuple[StateBatch, ...]


@dataclass(slots=True, frozen=True)
class StateUpdate:
    """A ShareUpdateValue: the changed batches and the start offset after the change."""

    snapshot_epoch: int
    leader_epoch: int
    start_offset: int
    delivery_complete: int
    batches: tuple[StateBatch, ...]


@dataclass(slots=True, frozen=True)
class GroupRecord:
    """A share group's own record, still JSON (README deviations): its body, None for a tombstone."""

    group_id: str
    body: dict[str, Any] | None


@dataclass(slots=True, frozen=True)
class PartitionRecord:
    """A share-partition's record: a snapshot (`ShareState`), an update, or a tombstone (None)."""

    key: tuple[str, bytes, int]
    value: ShareState | StateUpdate | None


def encode_key(record_type: int, group_id: str, topic_id: bytes, partition: int) -> bytes:
    group = group_id.encode()
    return struct.pack(">hh", record_type, len(group)) + group + topic_id + struct.pack(">i", partition)


def encode_snapshot(state: ShareState) -> bytes:
    head = struct.pack(">hiiiqqq", _VALUE_VERSION, state.snapshot_epoch, state.state_epoch, state.leader_epoch,
                       state.start_offset, state.create_timestamp, state.write_timestamp)
    return head + _batches(state.batches) + _tagged(state.delivery_complete)


def encode_update(update: StateUpdate) -> bytes:
    head = struct.pack(">hiiq", _VALUE_VERSION, update.snapshot_epoch, update.leader_epoch, update.start_offset)
    return head + _batches(update.batches) + _tagged(update.delivery_complete)


def merge(state: ShareState, update: StateUpdate) -> ShareState:
    """An update applied to the state before it: its batches replace what they cover, and
    what lies below the start offset goes (ShareCoordinatorShard.merge, with
    PersisterStateBatchCombiner; contiguous runs of one state and count are joined)."""
    start = max(state.start_offset, update.start_offset)
    offsets = _offsets(state.batches)
    offsets.update(_offsets(update.batches))
    return replace(state, leader_epoch=update.leader_epoch, start_offset=start, delivery_complete=update.delivery_complete,
                   batches=runs({offset: value for offset, value in offsets.items() if offset >= start}))


def extends(before: ShareState, start_offset: int, batches: tuple[StateBatch, ...]) -> bool:
    """Whether an update of `batches` from `start_offset` merged over `before` leaves exactly
    them: the start offset does not move back and every record `before` holds in flight from
    it is still in flight (else a snapshot must be written)."""
    offsets = _offsets(batches)
    return start_offset >= before.start_offset and all(offset in offsets for offset in _offsets(before.batches) if offset >= start_offset)


def runs(offsets: dict[int, tuple[RecordState, int]]) -> tuple[StateBatch, ...]:
    """Offsets' (state, delivery count) as runs of consecutive offsets sharing both."""
    batches: list[StateBatch] = []
    for offset in sorted(offsets):
        state, count = offsets[offset]
        last = batches[-1] if batches else None
        if last is not None and last.last_offset == offset - 1 and last.state is state and last.delivery_count == count:
            batches[-1] = StateBatch(last.first_offset, offset, state, count)
        else:
            batches.append(StateBatch(offset, offset, state, count))
    return tuple(batches)


def parse(key: bytes, value: bytes | None) -> GroupRecord | PartitionRecord:
    """A record of `__share_group_state`, in Kafka's layout or Ottla's former JSON one."""
    if key[:1] == b"[":
        return _parse_json(key, value)
    try:
        record_type, length = struct.unpack_from(">hh", key)
        group_id = key[4:4 + length].decode()
        topic_id = key[4 + length:20 + length]
        (partition,) = struct.unpack_from(">i", key, 20 + length)
        if record_type not in (SNAPSHOT, UPDATE) or len(key) != 24 + length:
            raise ValueError(f"unknown share state record type {record_type} or key size {len(key)}")
        partition_key = (group_id, topic_id, partition)
        if value is None:
            return PartitionRecord(partition_key, None)
        return PartitionRecord(partition_key, _decode_snapshot(value) if record_type == SNAPSHOT else _decode_update(value))
    except (struct.error, ValueError, KeyError) as exc:
        raise RecordFormatError(str(exc)) from None


def _parse_json(key: bytes, value: bytes | None) -> GroupRecord | PartitionRecord:
    try:
        kind, group_id, *rest = json.loads(key)
        body = None if value is None else json.loads(value)
        if kind == "group":
            return GroupRecord(group_id, body)
        if kind != "partition":
            raise ValueError(f"unknown share record kind {kind!r}")
        partition_key = (group_id, bytes.fromhex(rest[0]), int(rest[1]))
        if body is None:
            return PartitionRecord(partition_key, None)
        batches = tuple(StateBatch(int(row[0]), int(row[1]), _CODE_STATE[int(row[2])], int(row[3])) for row in body["batches"])
        return PartitionRecord(partition_key, ShareState(0, 0, -1, int(body["start_offset"]), -1, 0, 0, batches))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise RecordFormatError(str(exc)) from None


def _offsets(batches: tuple[StateBatch, ...]) -> dict[int, tuple[RecordState, int]]:
    return {offset: (batch.state, batch.delivery_count) for batch in batches for offset in range(batch.first_offset, batch.last_offset + 1)}


def _batches(batches: tuple[StateBatch, ...]) -> bytes:
    out = _uvarint(len(batches) + 1)
    for batch in batches:
        out += struct.pack(">qqbh", batch.first_offset, batch.last_offset, _STATE_CODE[batch.state], batch.delivery_count) + b"\x00"
    return out


def _tagged(delivery_complete: int) -> bytes:
    if delivery_complete == -1:
        return b"\x00"
    return b"\x01" + _uvarint(_DELIVERY_COMPLETE_TAG) + _uvarint(4) + struct.pack(">i", delivery_complete)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes, offset: int) -> None:
        self.data, self.offset = data, offset

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += struct.calcsize(fmt)
        return values

    def uvarint(self) -> int:
        value = shift = 0
        while True:
            (byte,) = self.take(">B")
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def batches(self) -> tuple[StateBatch, ...]:
        found = []
        for _ in range(self.uvarint() - 1):
            first, last, code, count = self.take(">qqbh")
            self._skip_tags()
            found.append(StateBatch(first, last, _CODE_STATE[code], count))
        return tuple(found)

    def delivery_complete(self) -> int:
        """The tagged fields at the end of a value: deliveryCompleteCount, -1 when absent."""
        found = -1
        for _ in range(self.uvarint()):
            tag, size = self.uvarint(), self.uvarint()
            if tag == _DELIVERY_COMPLETE_TAG and size == 4:
                (found,) = self.take(">i")
            else:
                self.offset += size
        return found

    def _skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.offset += self.uvarint()


def _decode_snapshot(value: bytes) -> ShareState:
    reader = _Reader(value, 0)
    version, snapshot_epoch, state_epoch, leader_epoch, start, created, written = reader.take(">hiiiqqq")
    if version != _VALUE_VERSION:
        raise ValueError(f"unknown ShareSnapshotValue version {version}")
    batches = reader.batches()
    return ShareState(snapshot_epoch, state_epoch, leader_epoch, start, reader.delivery_complete(), created, written, batches)


def _decode_update(value: bytes) -> StateUpdate:
    reader = _Reader(value, 0)
    version, snapshot_epoch, leader_epoch, start = reader.take(">hiiq")
    if version != _VALUE_VERSION:
        raise ValueError(f"unknown ShareUpdateValue version {version}")
    batches = reader.batches()
    return StateUpdate(snapshot_epoch, leader_epoch, start, reader.delivery_complete(), batches)
