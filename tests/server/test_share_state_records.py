"""`__share_group_state` holds a share-partition's state in Kafka 4.4's records: a ShareSnapshot
first, then ShareUpdates, in Kafka's layout (kafka-dump-log --share-group-state-decoder reads
them, as it reads the reference broker's after the same share fetches and acknowledgements);
a restart rebuilds the state from them, after compaction too, and a data dir that holds
Ottla's former JSON records still loads."""

from __future__ import annotations

import json
import pathlib
import struct

from ottla.server.coordinator import SHARE_GROUP_STATE, SHARE_STATE_PARTITIONS, CoordinatorLog
from ottla.storage import Storage
from ottla.testing import ThreadedBroker, running_broker
from tests.share_member import ShareFetcher, ShareMember

ACCEPT, RELEASE, REJECT = 1, 2, 3
GROUP = b"t7-group"


class _Rejoined(ShareFetcher):
    """A new member of t7-group, on t7 as an earlier broker on the same data dir left them."""

    def __init__(self, broker: ThreadedBroker, topic_id: bytes) -> None:
        self.topic, self.group, self.topic_id = "t7", "t7-group", topic_id
        self.bootstrap = broker.bootstrap_servers
        self.version, self.batch_size, self.epoch = 1, 500, 0
        self.member = ShareMember(broker)


def _state_records(data_dir: pathlib.Path) -> list[tuple[bytes, bytes | None]]:
    storage = Storage.open(data_dir)
    try:
        return list(CoordinatorLog(storage, SHARE_GROUP_STATE, SHARE_STATE_PARTITIONS, None).replay())
    finally:
        storage.close()


def _key(record_type: int, topic_id: bytes) -> bytes:
    return struct.pack(">hh", record_type, len(GROUP)) + GROUP + topic_id + struct.pack(">i", 0)


def test_share_partition_state_is_written_as_kafkas_snapshot_and_update_records(tmp_path: pathlib.Path) -> None:
    # Small segments, so that compaction (below) has closed segments to clean; one partition,
    # so that another group's records close t7's segments.
    with running_broker(data_dir=tmp_path, share_coordinator_state_topic_segment_bytes=300,
                        share_coordinator_state_topic_num_partitions=1) as broker:
        fetcher = ShareFetcher(broker, "t7")
        fetcher.produce_batch(count=10)
        assert fetcher.fetch().ranges == [(0, 9, 1)]
        assert fetcher.fetch(acknowledgements=[(0, 3, ACCEPT), (4, 4, REJECT), (5, 9, RELEASE)]).ranges == [(5, 9, 2)]
        fetcher.produce_batch(count=3)
        assert fetcher.fetch().ranges == [(10, 12, 1)]
        fetcher.fetch(acknowledgements=[(10, 12, ACCEPT)], max_wait_ms=0)
        topic_id = fetcher.topic_id
        fetcher.member.close()
        # Another group's records after them, so that t7's are all in closed segments.
        other = ShareFetcher(broker, "t7-other")
        for _ in range(3):
            other.produce_batch(count=2)
            (first, last, _count), = other.fetch().ranges
            other.fetch(acknowledgements=[(first, last, ACCEPT)], max_wait_ms=0)
        other.member.close()
    partition_records = [(key, value) for key, value in _state_records(tmp_path) if not key.startswith(b"[") and b"t7-group" in key]
    assert [key for key, _ in partition_records] == [_key(0, topic_id)] + [_key(1, topic_id)] * (len(partition_records) - 1)
    snapshot = partition_records[0][1]
    # The initialization: version 0, snapshot epoch 0, no batches and, as Kafka's, no
    # deliveryCompleteCount (an empty array, then no tagged field).
    assert snapshot is not None and snapshot[:6] == b"\x00\x00" + b"\x00" * 4 and snapshot[-2:] == b"\x01\x00"
    # The acknowledgement of 10 to 12 in Kafka's ShareUpdateValue layout: version 0, snapshot
    # epoch 0, leader epoch 0, start offset 5, the batches (5 to 9 AVAILABLE, delivered twice;
    # 10 to 12 ACKNOWLEDGED, once), deliveryCompleteCount 3 in tagged field 0. Kafka's holds
    # only the batch that changed (README deviations).
    assert partition_records[-1][1] == (struct.pack(">hiiq", 0, 0, 0, 5) + b"\x03" + struct.pack(">qqbh", 5, 9, 0, 2) + b"\x00"
                                        + struct.pack(">qqbh", 10, 12, 2, 1) + b"\x00" + b"\x01\x00\x04" + struct.pack(">i", 3))

    # Compaction keeps the last snapshot and the last update: they still make the whole state.
    storage = Storage.open(tmp_path)
    try:
        storage.compact(1 << 62)
    finally:
        storage.close()
    assert [key[:2] for key, _ in _state_records(tmp_path) if _key(0, topic_id)[2:] in key] == [b"\x00\x00", b"\x00\x01"]
    with running_broker(data_dir=tmp_path) as broker:
        again = _Rejoined(broker, topic_id)
        assert again.described() == (5, 5)
        again.member.join_until_assigned("t7-group", ["t7"])
        # 5 to 9 were acquired a second time when the broker stopped: the third delivery.
        assert again.fetch(0, max_wait_ms=0).ranges == [(5, 9, 3)]


def test_a_data_dir_of_json_state_records_still_loads(tmp_path: pathlib.Path) -> None:
    # Ottla wrote JSON records when its state topic had one partition.
    with running_broker(data_dir=tmp_path, share_coordinator_state_topic_num_partitions=1) as broker:
        fetcher = ShareFetcher(broker, "t7")
        fetcher.produce_batch(count=10)
        topic_id = fetcher.topic_id
        fetcher.member.close()
    storage = Storage.open(tmp_path)
    try:
        state_log = CoordinatorLog(storage, SHARE_GROUP_STATE, SHARE_STATE_PARTITIONS, None)
        # As Ottla wrote them before: 3 and 4 delivered twice and available, 5 acknowledged.
        state_log.append("t7-group", [
            (json.dumps(["group", "t7-group"]).encode(),
             json.dumps({"epoch": 2, "topics": {topic_id.hex(): "t7"}, "initialized": {topic_id.hex(): [0]}}).encode()),
            (json.dumps(["partition", "t7-group", topic_id.hex(), 0]).encode(),
             json.dumps({"start_offset": 3, "batches": [[3, 4, 0, 2], [5, 5, 2, 1]]}).encode())], 0)
    finally:
        storage.close()
    with running_broker(data_dir=tmp_path) as broker:
        again = _Rejoined(broker, topic_id)
        assert again.described()[0] == 3
        again.member.join_until_assigned("t7-group", ["t7"])
        assert again.fetch(0, max_wait_ms=0).ranges == [(3, 4, 3), (6, 9, 1)]
