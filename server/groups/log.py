"""`__consumer_offsets`: where the coordinator writes its records and reads them back.

Kafka keeps group state as records in this internal, compacted topic and rebuilds its
memory from it when a broker takes over the partition (GroupMetadataManager.replay,
OffsetMetadataManager.replay); we reuse the same log engine and do the same at start-up.
A commit is acknowledged only after its record is in the log, so a process killed
right after an acknowledgement still finds it on restart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from storage import FileRegion, Storage
from wire.records import Record, build_batch, iter_records, scan_batches

log = logging.getLogger("ottla.groups")

OFFSETS_TOPIC = "__consumer_offsets"
# Kafka's settings for the topic: compacted, so only the latest value per key survives
# (offsets.topic.segment.bytes defaults to 100 MiB to keep compaction and loading quick).
OFFSETS_TOPIC_CONFIGS = {"cleanup.policy": "compact", "segment.bytes": str(100 * 1024 * 1024)}
_REPLAY_READ_BYTES = 1 << 20

KeyValue = tuple[bytes, bytes | None]  # a None value is a tombstone


def java_string_hash(text: str) -> int:
    """Java's String.hashCode over UTF-16 code units, as a signed 32-bit int."""
    value = 0
    encoded = text.encode("utf-16-be")
    for index in range(0, len(encoded), 2):
        value = (31 * value + (encoded[index] << 8 | encoded[index + 1])) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


class CoordinatorLog:
    """Appends coordinator records to the group's partition of `__consumer_offsets` and
    replays all of them. The topic is created on first use with `partitions` partitions;
    an existing topic keeps its count, since a group's partition must never move."""

    def __init__(self, storage: Storage, partitions: int) -> None:
        info = storage.topic(OFFSETS_TOPIC)
        if info is None:
            info = storage.create_topic(OFFSETS_TOPIC, partitions, dict(OFFSETS_TOPIC_CONFIGS))
        self.storage = storage
        self.partitions = info.partitions

    def partition_for(self, group_id: str) -> int:
        """GroupCoordinatorShard.partitionFor: Utils.abs(groupId.hashCode()) % partitions."""
        code = java_string_hash(group_id)
        return (0 if code == -(1 << 31) else abs(code)) % self.partitions

    def append(self, group_id: str, records: list[KeyValue], now_ms: int) -> None:
        """One batch, so a commit of many partitions is stored whole or not at all.
        Raises KafkaError from the log (e.g. KAFKA_STORAGE_ERROR)."""
        batch = build_batch([Record(offset=i, timestamp=now_ms, key=key, value=value) for i, (key, value) in enumerate(records)])
        self.storage.partition(OFFSETS_TOPIC, self.partition_for(group_id)).append(batch)

    def replay(self) -> Iterator[KeyValue]:
        for index in range(self.partitions):
            partition = self.storage.partition(OFFSETS_TOPIC, index)
            offset, end = partition.log_start_offset, partition.log_end_offset
            while offset < end:
                chunks = partition.read(offset, _REPLAY_READ_BYTES).chunks
                data = b"".join(chunk.read() if isinstance(chunk, FileRegion) else bytes(chunk) for chunk in chunks)
                progressed = False
                for header, batch in scan_batches(data, verify_crc=True):
                    if header.next_offset <= offset:
                        continue
                    if not header.is_control:
                        for record in iter_records(batch):
                            if record.offset >= offset and record.key is not None:
                                yield bytes(record.key), None if record.value is None else bytes(record.value)
                    offset = header.next_offset
                    progressed = True
                if not progressed:
                    log.warning("%s-%d: stopped loading at offset %d, no readable batch there", OFFSETS_TOPIC, index, offset)
                    break
