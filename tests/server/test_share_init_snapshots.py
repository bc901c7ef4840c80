"""A share group's subscribed partitions are initialized as Kafka 4.4 initializes them: the
heartbeat that writes a topic initializing has the share coordinator write each
share-partition's ShareSnapshot (ShareCoordinatorShard.initializeState: snapshot epoch 0, the
group epoch as state epoch, leader epoch 0, start offset -1, no batches and no
deliveryCompleteCount), which creates `__share_group_state`, before the topic is written
initialized. The first fetch picks the start offset by share.auto.offset.reset and the
first write after it is a ShareUpdate holding it, as kafka-dump-log showed on the reference
broker after the same join, fetch and acknowledgement. A data dir whose share-partitions have
no initialization snapshot (Ottla's before) still loads."""

from __future__ import annotations

import pathlib
import struct

from kafka import KafkaProducer  # type: ignore[import-untyped]

from ottla.server.coordinator import SHARE_GROUP_STATE, SHARE_STATE_PARTITIONS, CoordinatorLog, share_state_key
from ottla.server.share.partition import RecordState, StateBatch
from ottla.server.share.records import SNAPSHOT, UPDATE, ShareState, encode_key, encode_snapshot
from ottla.storage import Storage
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from tests.share_member import ShareFetcher, ShareMember

ACCEPT = 1
EARLIEST = {"share.auto.offset.reset": "earliest"}


def _state_records(data_dir: pathlib.Path, group: str) -> list[tuple[bytes, bytes | None]]:
    """The group's records in `__share_group_state`, each partition's in its order."""
    storage = Storage.open(data_dir)
    try:
        return [(key, value) for key, value in CoordinatorLog(storage, SHARE_GROUP_STATE, SHARE_STATE_PARTITIONS, None).replay()
                if group.encode() in key]
    finally:
        storage.close()


def _snapshot_fields(value: bytes | None) -> tuple[int, ...]:
    """A ShareSnapshotValue's version, snapshot epoch, state epoch, leader epoch and start offset."""
    assert value is not None
    return struct.unpack_from(">hiiiq", value)


def _update_fields(value: bytes | None) -> tuple[int, ...]:
    """A ShareUpdateValue's version, snapshot epoch, leader epoch, start offset."""
    assert value is not None
    return struct.unpack_from(">hiiq", value)


class _Rejoined(ShareFetcher):
    """A new member of `topic`'s group, on a topic an earlier broker on the same data dir made."""

    def __init__(self, broker: ThreadedBroker, topic: str, topic_id: bytes) -> None:
        self.topic, self.group, self.topic_id = topic, f"{topic}-group", topic_id
        self.bootstrap = broker.bootstrap_servers
        self.version, self.batch_size, self.epoch = 1, 500, 0
        self.member = ShareMember(broker)


def test_each_assigned_partition_has_kafkas_initialization_snapshot_before_any_fetch(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=tmp_path) as broker:
        broker.create_topic("init2", partitions=2)
        member = ShareMember(broker)
        try:
            assert member.join_until_assigned("init2-group", ["init2"])
        finally:
            member.close()
    records = _state_records(tmp_path, "init2-group")
    assert sorted(struct.unpack(">i", key[-4:])[0] for key, _ in records) == [0, 1]
    for key, value in records:
        assert key[:2] == struct.pack(">h", SNAPSHOT)
        # Snapshot epoch 0; state epoch 2, the group's epoch at the join; leader epoch 0; no start.
        assert _snapshot_fields(value) == (0, 0, 2, 0, -1)
        assert value is not None
        created, written = struct.unpack_from(">qq", value, 22)
        # Equal timestamps, then no batches and no tagged fields (no deliveryCompleteCount).
        assert created == written and value[38:] == b"\x01\x00"


def test_the_first_fetch_sets_the_start_offset_in_an_update(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=tmp_path) as broker:
        fetcher = ShareFetcher(broker, "init1", group_configs=EARLIEST, open_session=False)
        # A fetch of an empty log picks the start (0) and persists nothing: Kafka's
        # coordinator still holds no start offset.
        assert fetcher.fetch(0, max_wait_ms=0).ranges == []
        fetcher.produce_batch(count=5)
        assert fetcher.described() == (-1, -1)
        assert fetcher.fetch().ranges == [(0, 4, 1)]
        fetcher.fetch(acknowledgements=[(0, 4, ACCEPT)], max_wait_ms=0)
        fetcher.member.close()
    records = _state_records(tmp_path, "init1-group")
    assert [key[:2] for key, _ in records] == [struct.pack(">h", kind) for kind in (SNAPSHOT, UPDATE, UPDATE)]
    assert _snapshot_fields(records[0][1])[4] == -1
    # The acquisition (which Kafka does not persist) at the start earliest chose, then the acknowledgement.
    assert [_update_fields(value)[3] for _, value in records[1:]] == [0, 5]


def test_a_restart_before_the_first_fetch_keeps_the_partition_initialized_without_a_start(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=tmp_path) as broker:
        fetcher = ShareFetcher(broker, "init3", group_configs=EARLIEST, open_session=False)
        fetcher.produce_batch(count=5)
        topic_id = fetcher.topic_id
        fetcher.member.close()
    with running_broker(data_dir=tmp_path) as broker:
        again = _Rejoined(broker, "init3", topic_id)
        # As Kafka describes a share-partition its persister holds with start offset -1.
        assert again.described() == (-1, -1)
        again.member.join_until_assigned("init3-group", ["init3"])
        assert again.fetch(0).ranges == [(0, 4, 1)]
        again.member.close()
    (snapshot_key, snapshot), *updates = _state_records(tmp_path, "init3-group")
    assert snapshot_key[:2] == struct.pack(">h", SNAPSHOT) and _snapshot_fields(snapshot) == (0, 0, 2, 0, -1)
    # The start earliest chose is persisted at the first write, in an update.
    assert [(key[:2], _update_fields(value)[3]) for key, value in updates] == [(struct.pack(">h", UPDATE), 0)]


def test_a_data_dir_without_initialization_snapshots_still_loads(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=tmp_path) as broker:
        broker.create_topic("init4", partitions=1)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=60000)
        for value in range(10):
            producer.send("init4", b"v%d" % value, partition=0)
        producer.flush()
        producer.close()
    storage = Storage.open(tmp_path)
    try:
        info = storage.topic("init4")
        assert info is not None
        topic_id = bytes(info.topic_id)
        # As Ottla wrote a share-partition before: its first snapshot at the first fetch, with
        # its start offset (3), 3 and 4 delivered twice and available, 5 acknowledged.
        state = ShareState(0, 3, 0, 3, -1, 1, 1, (StateBatch(3, 4, RecordState.AVAILABLE, 2), StateBatch(5, 5, RecordState.ACKNOWLEDGED, 1)))
        key = ("init4-group", topic_id, 0)
        CoordinatorLog(storage, SHARE_GROUP_STATE, SHARE_STATE_PARTITIONS, None).append(
            share_state_key(*key), [(encode_key(SNAPSHOT, *key), encode_snapshot(state))], 0)
    finally:
        storage.close()
    with running_broker(data_dir=tmp_path) as broker:
        again = _Rejoined(broker, "init4", topic_id)
        again.member.join_until_assigned("init4-group", ["init4"])
        assert again.described()[0] == 3
        assert again.fetch(0, max_wait_ms=0).ranges == [(3, 4, 3), (6, 9, 1)]
        again.member.close()
    # The share-partition kept its state: no initialization snapshot was written over it.
    assert [key[:2] for key, _ in _state_records(tmp_path, "init4-group")] == [struct.pack(">h", SNAPSHOT), struct.pack(">h", UPDATE)]


def test_deleting_a_group_or_its_offsets_before_any_fetch_tombstones_the_initialization_snapshots(tmp_path: pathlib.Path) -> None:
    """As Kafka's persister deletes the state of every initialized share-partition: those
    never fetched from too (their snapshot is the only state they have)."""
    with running_broker(data_dir=tmp_path) as broker:
        broker.create_topic("init5", partitions=1)
        broker.create_topic("init6", partitions=1)
        member = ShareMember(broker)
        try:
            for group, topic in (("init5-group", "init5"), ("init6-group", "init6")):
                member.join_until_assigned(group, [topic])
                assert member.heartbeat(group, -1, [topic])["error_code"] == 0
            deleted = member.call(ApiKey.DELETE_GROUPS, 2, {"groups_names": ["init5-group"]})
            assert deleted["results"][0]["error_code"] == 0
            forgotten = member.call(ApiKey.DELETE_SHARE_GROUP_OFFSETS, 0, {"group_id": "init6-group", "topics": [{"topic_name": "init6"}]})
            assert forgotten["error_code"] == 0 and forgotten["responses"][0]["error_code"] == 0
        finally:
            member.close()
    for group in ("init5-group", "init6-group"):
        records = _state_records(tmp_path, group)
        assert [key[:2] for key, _ in records] == [struct.pack(">h", SNAPSHOT)] * 2
        assert records[0][1] is not None and records[1][1] is None
