"""Kafka's producer state snapshot, the `<offset>.snapshot` file: ProducerStateManager.writeSnapshot
and readSnapshot over the generated ProducerSnapshot message, version 1, so Kafka and its tools
(kafka-dump-log) read Ottla's snapshots and Ottla reads Kafka's.

Layout, big-endian: version int16 (1); CRC-32C uint32 of every byte after it; entry count int32;
then per producer: producer id int64, epoch int16, last sequence int32, last offset int64,
offset delta int32, timestamp int64, coordinator epoch int32, first offset of its open
transaction int64 (-1 for none).

An entry holds the producer's last batch only (its last sequence and offset, offset delta; -1,
-1 and 0 without one), so after a restart a retry of an older batch is out of order, as on
Kafka; the batches appended after the snapshot are replayed from the log and kept as usual.
Aborted transactions are not in it: the segments' `.txnindex` files hold them, as in Kafka.
"""

from __future__ import annotations

import struct

from ottla.storage.producer_state import BatchMetadata, ProducerEntry, ProducerStateManager

SNAPSHOT_VERSION = 1
_HEADER = struct.Struct(">hIi")  # version, CRC, entry count
_CRC_START = 6  # the CRC covers the bytes from the entry count on
_ENTRY = struct.Struct(">qhiqiqiq")
_INT32_MAX = 2**31 - 1


class CorruptSnapshotError(ValueError):
    """Kafka's CorruptSnapshotException: a snapshot it cannot read, which the log deletes before
    trying an older one or rebuilding from the log (ProducerStateManager.loadFromSnapshot)."""


def _checksum(data: memoryview) -> int:
    """CRC-32C, the package imported at the first snapshot, not with the broker (its import costs
    some 15 ms, see wire/records/batch.py)."""
    from crc32c import crc32c

    return int(crc32c(data))


def _hash_map_order(producer_ids: list[int]) -> list[int]:
    """The ids in the order Kafka iterates its producers' HashMap when it writes a snapshot,
    so kafka-dump-log lists the same producers in the same order: by bucket (Long.hashCode
    spread as HashMap.hash does, masked by the table's size, the smallest power of two from 16
    that keeps the load factor at most 0.75), insertion order within a bucket. Kafka's table never
    shrinks, so after many producers left its order may differ; readers do not depend on it."""
    capacity = 16
    while len(producer_ids) > capacity * 3 // 4:
        capacity *= 2

    def bucket(producer_id: int) -> int:
        unsigned = producer_id & 0xFFFFFFFFFFFFFFFF
        folded = (unsigned ^ (unsigned >> 32)) & 0xFFFFFFFF
        return (folded ^ (folded >> 16)) & (capacity - 1)

    return sorted(producer_ids, key=bucket)


def encode_snapshot(state: ProducerStateManager) -> bytes:
    """The snapshot of `state`'s producers, as ProducerStateManager.writeSnapshot writes it."""
    producers = state.producers
    body = bytearray(_HEADER.size + _ENTRY.size * len(producers))
    struct.pack_into(">i", body, _CRC_START, len(producers))
    position = _HEADER.size
    for producer_id in _hash_map_order(list(producers)):
        entry = producers[producer_id]
        if entry.batches:
            last = entry.batches[-1]
            last_seq, last_offset, offset_delta = last.last_seq, last.last_offset, last.last_offset - last.first_offset
        else:
            last_seq, last_offset, offset_delta = -1, -1, 0
        txn_first = -1 if entry.current_txn_first_offset is None else entry.current_txn_first_offset
        _ENTRY.pack_into(
            body, position, producer_id, entry.epoch, last_seq, last_offset, offset_delta, entry.last_timestamp,
            entry.coordinator_epoch, txn_first,
        )
        position += _ENTRY.size
    _HEADER.pack_into(body, 0, SNAPSHOT_VERSION, _checksum(memoryview(body)[_CRC_START:]), len(producers))
    return bytes(body)


def decode_snapshot(data: bytes) -> ProducerStateManager:
    """The producer state a snapshot holds, as ProducerStateManager.readSnapshot reads it: a
    version other than 1, a body too short for its entries or a CRC that does not match raise
    CorruptSnapshotError (an earlier Ottla's JSON snapshot reads as version 31522, `{"`). A
    producer's last batch is its one batch kept; the timestamp is that batch's and the producer's."""
    if len(data) < _HEADER.size:
        raise CorruptSnapshotError(f"a snapshot of {len(data)} bytes is shorter than its header")
    version, crc, count = _HEADER.unpack_from(data)
    if version != SNAPSHOT_VERSION:
        raise CorruptSnapshotError(f"Snapshot contained an unknown file version {version}")
    end = _HEADER.size + _ENTRY.size * count
    if count < 0 or end > len(data):
        raise CorruptSnapshotError(f"a snapshot of {len(data)} bytes cannot hold {count} producers")
    computed = _checksum(memoryview(data)[_CRC_START:])
    if crc != computed:
        raise CorruptSnapshotError(f"Snapshot is corrupt (CRC is no longer valid). Stored crc: {crc}. Computed crc: {computed}")
    state = ProducerStateManager()
    ongoing: dict[int, int] = {}
    for producer_id, epoch, last_seq, last_offset, offset_delta, timestamp, coordinator_epoch, txn_first in _ENTRY.iter_unpack(
        memoryview(data)[_HEADER.size : end]
    ):
        batches = []
        if last_offset >= 0:
            # DefaultRecordBatch.decrementSequence: sequences wrap at Int32.MAX_VALUE.
            first_seq = last_seq - offset_delta if last_seq >= offset_delta else _INT32_MAX - (offset_delta - last_seq) + 1
            batches.append(BatchMetadata(first_seq, last_seq, last_offset - offset_delta, last_offset, timestamp))
        open_txn = txn_first if txn_first >= 0 else None
        state.producers[producer_id] = ProducerEntry(epoch, batches, open_txn, timestamp, coordinator_epoch)
        if open_txn is not None:
            ongoing[open_txn] = producer_id
    state.ongoing = dict(sorted(ongoing.items()))
    return state
