"""The records our coordinators write into `__consumer_offsets` and `__transaction_state`,
byte for byte as Kafka 4.4 writes them (compared with kafka-dump-log on a reference broker
after the same requests), and the records of the previous layout still loading.

Kafka 4.4: OffsetCommitValue version 4 with the topic id as tagged field 0
(GroupCoordinatorRecordHelpers.offsetCommitValueVersion, KafkaApis filling the id in by name);
group coordinator batches at base sequence 0 (CoordinatorRuntime), transaction log batches
without one; TransactionLogValue's PreviousProducerId the producer id before each transition
(TransactionMetadata.prepareTransitionTo); a KIP-848 member's metadata with the regex "" and a
null ClassicMemberMetadata; no AssignmentTimestamp at 0; a deleted consumer group's tombstones
target assignment, subscription metadata (type 4), group epoch, and no GroupMetadata one."""

from __future__ import annotations

import pathlib
import struct
from typing import Any

from ottla.server.coordinator.log import java_string_hash
from ottla.storage import FileRegion, Storage
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import BatchHeader, Record, build_batch, iter_records, scan_batches
from tests.kafka_wire import WireClient

OFFSETS = "__consumer_offsets"
TXN = "__transaction_state"
Stored = tuple[BatchHeader, list[tuple[bytes, bytes | None]]]


def _batches(data_dir: pathlib.Path, topic: str) -> list[Stored]:
    """Every batch of `topic` in the (stopped) broker's data dir, with its keyed records."""
    storage = Storage.open(data_dir)
    try:
        info = storage.topic(topic)
        assert info is not None
        out: list[Stored] = []
        for index in range(info.partitions):
            log = storage.partition(topic, index)
            chunks = log.read(log.log_start_offset, 1 << 24).chunks
            data = b"".join(chunk.read() if isinstance(chunk, FileRegion) else bytes(chunk) for chunk in chunks)
            for header, batch in scan_batches(data):
                records = [(bytes(r.key), None if r.value is None else bytes(r.value)) for r in iter_records(batch) if r.key is not None]
                out.append((header, records))
        return out
    finally:
        storage.close()


def _commit(client: WireClient, group: str, topic: str, partition: int, offset: int, version: int = 9) -> None:
    body: dict[str, Any] = {
        "group_id": group, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None, "retention_time_ms": 60_000,
        "topics": [{"name": topic, "partitions": [{"partition_index": partition, "committed_offset": offset, "committed_leader_epoch": -1,
                                                   "commit_timestamp": -1, "committed_metadata": ""}]}],
    }
    answer = client.call(ApiKey.OFFSET_COMMIT, version, body)
    assert [p["error_code"] for t in answer["topics"] for p in t["partitions"]] == [ErrorCode.NONE]


def _fetch(client: WireClient, group: str, topic: str, partition: int) -> int:
    answer = client.call(ApiKey.OFFSET_FETCH, 7, {"group_id": group, "topics": [{"name": topic, "partition_indexes": [partition]}], "require_stable": False})
    return int(answer["topics"][0]["partitions"][0]["committed_offset"])


def _type(key: bytes) -> int:
    return int(struct.unpack_from(">h", key)[0])


def _run_requests(data_dir: pathlib.Path) -> tuple[bytes, int, int]:
    """The requests whose records the tests read: (topic id of "t", transactional producer id,
    the consumer group's epoch after its member left)."""
    with running_broker(data_dir=data_dir) as broker:
        client = WireClient(broker.bootstrap_servers)
        created = client.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": "t", "num_partitions": 2, "replication_factor": 1, "assignments": [],
                                                                    "configs": []}], "timeout_ms": 5000, "validate_only": False})
        topic_id = created["topics"][0]["topic_id"]
        _commit(client, "simple", "t", 0, 5)
        _commit(client, "retained", "t", 0, 6, version=2)
        init = client.call(ApiKey.INIT_PRODUCER_ID, 5, {"transactional_id": "tx", "transaction_timeout_ms": 60_000, "producer_id": -1, "producer_epoch": -1})
        assert init["error_code"] == ErrorCode.NONE
        member: dict[str, Any] = {"group_id": "cg", "member_id": "m-1", "member_epoch": 0, "instance_id": None, "rack_id": None,
                                  "rebalance_timeout_ms": 30_000, "subscribed_topic_names": ["t"], "subscribed_topic_regex": None,
                                  "server_assignor": None, "topic_partitions": []}
        joined = client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, member)
        assert joined["error_code"] == ErrorCode.NONE
        left = client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {**member, "member_epoch": -1, "subscribed_topic_names": None})
        assert left["error_code"] == ErrorCode.NONE
        _commit(client, "cg", "t", 1, 3)  # an admin's commit to the empty group
        deleted = client.call(ApiKey.DELETE_GROUPS, 2, {"groups_names": ["cg"]})
        assert deleted["results"][0]["error_code"] == ErrorCode.NONE
        client.close()
        return topic_id, int(init["producer_id"]), int(joined["member_epoch"]) + 1


def test_records_and_batches_are_written_as_kafka_writes_them(tmp_path: pathlib.Path) -> None:
    topic_id, producer_id, epoch_after_leave = _run_requests(tmp_path)
    offsets = _batches(tmp_path, OFFSETS)
    assert offsets and all(header.base_sequence == 0 for header, _ in offsets)
    records = [record for _, batch in offsets for record in batch]
    values = {key: value for key, value in records}

    simple = values[struct.pack(">hh6sh1si", 1, 6, b"simple", 1, b"t", 0)]
    assert simple is not None
    assert simple[:15] == struct.pack(">hqi", 4, 5, -1) + b"\x01"  # version 4, offset, epoch, metadata ""
    assert simple[23:] == b"\x01\x00\x10" + topic_id  # one tagged field: 0, 16 bytes, the topic id
    retained = values[struct.pack(">hh8sh1si", 1, 8, b"retained", 1, b"t", 0)]
    assert retained is not None and retained[:12] == struct.pack(">hqh", 1, 6, 0)  # version 1 with the expiry

    member_key = struct.pack(">hh2sh3s", 5, 2, b"cg", 3, b"m-1")
    written = next(value for key, value in records if key == member_key and value is not None)
    assert written.endswith(b"\x01" + struct.pack(">i", 30_000) + b"\x00" + b"\x01\x00\x01\x00")  # regex "", assignor null, classic null

    emptied = [value for key, value in records if key == struct.pack(">hh2s", 6, 2, b"cg") and value is not None][-1]
    assert emptied == struct.pack(">hi", 0, epoch_after_leave) + b"\x00"  # no AssignmentTimestamp at 0

    last = [batch for _, batch in offsets if any(b"cg" in key for key, _ in batch)][-1]
    assert [(_type(key), value) for key, value in last] == [(1, None), (6, None), (4, None), (3, None)]

    txn = _batches(tmp_path, TXN)
    assert txn and all(header.base_sequence == -1 for header, _ in txn)
    (key, value), = txn[0][1]
    assert value is not None and value[:2] == b"\x00\x01"
    assert value[17:] == b"\x00" + value[18:34] + b"\x01\x00\x08" + struct.pack(">q", producer_id)  # Empty: null partitions, PreviousProducerId


def _old_offset_value(offset: int, commit_ms: int) -> bytes:
    """OffsetCommitValue version 3, as the previous Ottla wrote it."""
    return struct.pack(">hqih", 3, offset, -1, 0) + struct.pack(">q", commit_ms)


def test_offsets_stored_in_the_previous_layout_still_load(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=tmp_path) as broker:
        client = WireClient(broker.bootstrap_servers)
        client.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": "t", "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}],
                                              "timeout_ms": 5000, "validate_only": False})
        _commit(client, "new", "t", 0, 5)
        client.close()
    storage = Storage.open(tmp_path)
    try:
        info = storage.topic(OFFSETS)
        assert info is not None
        code = java_string_hash("old")
        partition = (0 if code == -(1 << 31) else abs(code)) % info.partitions
        key = struct.pack(">hh3sh1si", 1, 3, b"old", 1, b"t", 0)
        batch = build_batch([Record(offset=0, timestamp=1_700_000_000_000, key=key, value=_old_offset_value(7, 1_700_000_000_000))])
        storage.partition(OFFSETS, partition).append(batch, from_client=False)
    finally:
        storage.close()
    with running_broker(data_dir=tmp_path) as broker:
        client = WireClient(broker.bootstrap_servers)
        assert (_fetch(client, "old", "t", 0), _fetch(client, "new", "t", 0)) == (7, 5)
        client.close()


def test_a_consumer_group_member_written_as_kafka_writes_it_loads_back(tmp_path: pathlib.Path) -> None:
    """The null ClassicMemberMetadata (presence byte 0) and the regex "" read back as a member
    that speaks ConsumerGroupHeartbeat and subscribes by name."""
    member: dict[str, Any] = {"group_id": "cg", "member_id": "m-1", "member_epoch": 0, "instance_id": None, "rack_id": None,
                              "rebalance_timeout_ms": 30_000, "subscribed_topic_names": ["t"], "subscribed_topic_regex": None,
                              "server_assignor": None, "topic_partitions": []}
    with running_broker(data_dir=tmp_path) as broker:
        client = WireClient(broker.bootstrap_servers)
        client.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": "t", "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}],
                                              "timeout_ms": 5000, "validate_only": False})
        assert client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, member)["error_code"] == ErrorCode.NONE
        client.close()
    with running_broker(data_dir=tmp_path) as broker:
        client = WireClient(broker.bootstrap_servers)
        described = client.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, {"group_ids": ["cg"], "include_authorized_operations": False})
        client.close()
    (group,) = described["groups"]
    assert [(m["member_id"], m["subscribed_topic_names"], m["subscribed_topic_regex"]) for m in group["members"]] == [("m-1", ["t"], "")]


def test_a_downgraded_group_is_tombstoned_in_kafkas_record_order(tmp_path: pathlib.Path) -> None:
    """ConsumerGroup.createGroupTombstoneRecords, when the last ConsumerGroupHeartbeat member
    leaves and the classic one left makes it a classic group: every member's current
    assignment, every target assignment, the target assignment metadata, every member's
    subscription, the subscription metadata, the group epoch; then the classic group."""
    subscription = struct.pack(">hih", 0, 1, 1) + b"t" + struct.pack(">i", -1)
    member: dict[str, Any] = {"group_id": "g", "member_id": "c1", "member_epoch": 0, "instance_id": None, "rack_id": None,
                              "rebalance_timeout_ms": 30_000, "subscribed_topic_names": ["t"], "subscribed_topic_regex": None,
                              "server_assignor": None, "topic_partitions": []}
    with running_broker(data_dir=tmp_path) as broker:
        client = WireClient(broker.bootstrap_servers)
        client.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": "t", "num_partitions": 2, "replication_factor": 1, "assignments": [], "configs": []}],
                                              "timeout_ms": 5000, "validate_only": False})
        assert client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, member)["error_code"] == ErrorCode.NONE
        joined = client.call(ApiKey.JOIN_GROUP, 8, {"group_id": "g", "session_timeout_ms": 45_000, "rebalance_timeout_ms": 30_000, "member_id": "",
                                                    "group_instance_id": "i1", "protocol_type": "consumer",
                                                    "protocols": [{"name": "range", "metadata": subscription}], "reason": None})
        assert joined["error_code"] == ErrorCode.NONE
        assert client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {**member, "member_epoch": -1})["error_code"] == ErrorCode.NONE
        client.close()
    downgrade = next(batch for _, batch in _batches(tmp_path, OFFSETS) if any(_type(key) == 2 and value for key, value in batch))
    assert [(_type(key), value is None) for key, value in downgrade] == [
        (8, True), (8, True), (7, True), (7, True), (6, True), (5, True), (5, True), (4, True), (3, True), (2, False)]


def test_a_deleted_streams_group_is_tombstoned_in_kafkas_record_order(tmp_path: pathlib.Path) -> None:
    """StreamsGroup.createGroupTombstoneRecords: target assignment metadata, group epoch, topology."""
    topology = {"epoch": 0, "subtopologies": [{"subtopology_id": "0", "source_topics": ["s"], "source_topic_regex": [], "state_changelog_topics": [],
                                               "repartition_sink_topics": [], "repartition_source_topics": [], "copartition_groups": []}]}

    def heartbeat(client: WireClient, epoch: int) -> dict[str, Any]:
        joining = epoch == 0
        return client.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
            "group_id": "sg", "member_id": "m1", "member_epoch": epoch, "endpoint_information_epoch": 0, "instance_id": None,
            "rack_id": None, "rebalance_timeout_ms": 30_000 if joining else -1, "topology": topology if joining else None,
            "active_tasks": [] if joining else None, "standby_tasks": [] if joining else None, "warmup_tasks": [] if joining else None,
            "process_id": "p1", "user_endpoint": None, "client_tags": [] if joining else None, "task_offsets": None,
            "task_end_offsets": None, "shutdown_application": False})

    with running_broker(data_dir=tmp_path) as broker:
        client = WireClient(broker.bootstrap_servers)
        assert heartbeat(client, 0)["error_code"] == ErrorCode.NONE
        assert heartbeat(client, -1)["error_code"] == ErrorCode.NONE
        assert client.call(ApiKey.DELETE_GROUPS, 2, {"groups_names": ["sg"]})["results"][0]["error_code"] == ErrorCode.NONE
        client.close()
    last = [batch for _, batch in _batches(tmp_path, OFFSETS) if any(b"sg" in key for key, _ in batch)][-1]
    assert [(_type(key), value) for key, value in last] == [(20, None), (17, None), (23, None)]
