"""Consumer and streams groups' `__consumer_offsets` records as Kafka 4.4 writes them, compared
with kafka-dump-log over a reference broker's log after the same requests:

- the group epoch records' metadataHash (KIP-1101): XXH3 (hash4j) of each subscribed topic's
  id, name, partitions and racks (Utils.computeTopicHash), combined in name order
  (Utils.computeGroupHash); the consumer group's as tagged field 0, not written at 0;
- a KIP-848 member's subscribed topic names sorted (newConsumerGroupMemberSubscriptionRecord);
- a streams member's state as streams.MemberState.value: STABLE is 1;
- a deleted group's offset tombstones in the order Kafka's TimelineHashMaps of topics, then of
  partitions, iterate them (OffsetMetadataManager.deleteAllOffsets), not in commit order.
"""

from __future__ import annotations

import base64
import pathlib
import struct
import time
from typing import Any

from ottla.server.java_hashing import kafka_group_hash, kafka_topic_hash, xxh3_64
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.kafka_wire import WireClient
from tests.server.test_internal_records_layout import OFFSETS, _batches, _type

# Hashes the reference broker wrote for its topics (ids as it made them, no racks).
REFERENCE_IDS = {"t": "f6efe831b65048aaaaa3f03030730250", "alpha": "cc27513660b844a58dbc6d8665cb9664", "s": "1a21eced8e2a4688b00c09188ba726c4"}
REFERENCE_PARTITIONS = {"t": 3, "alpha": 4, "s": 2}


def _reference_hash(*names: str) -> int:
    return kafka_group_hash({name: kafka_topic_hash(bytes.fromhex(REFERENCE_IDS[name]), name, REFERENCE_PARTITIONS[name]) for name in names})


def test_metadata_hashes_are_the_ones_kafka_wrote() -> None:
    assert _reference_hash("t", "alpha") == -5274983676921990854  # ConsumerGroupMetadataValue of a group subscribed to both
    assert _reference_hash("s") == -4050168386440489195  # StreamsGroupMetadataValue of a topology reading s
    assert kafka_group_hash({}) == 0


def test_xxh3_and_racks_are_hashed_as_hash4j_hashes_them() -> None:
    """Values from hash4j 0.22.0 (Kafka 4.4's): XXH3-64 over bytes (i * 7 + 3) of each length,
    one per branch of the algorithm; a topic whose partitions' replicas have racks (unsorted)."""
    expected = {0: 3244421341483603138, 3: -6266602912829716452, 8: 6941064856527638883, 16: -5131753158909839995,
                100: -5362810412169982817, 200: 8389308914288017243, 500: -5135160933809773974, 2000: 8212356305084836938}
    for size, value in expected.items():
        assert xxh3_64(bytes((i * 7 + 3) & 0xFF for i in range(size))) == value & (1 << 64) - 1, size
    topic_id = base64.urlsafe_b64decode("9u_oMbZQSKqqo_AwMHMCUA==")
    racks = [["rb", "ra"], ["rack-ü"]]
    assert kafka_topic_hash(topic_id, "topic-é", 2, lambda partition: racks[partition]) == -8076428522053779826


def _create(client: WireClient, name: str, partitions: int) -> bytes:
    created = client.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": name, "num_partitions": partitions, "replication_factor": 1, "assignments": [],
                                                                "configs": []}], "timeout_ms": 5000, "validate_only": False})
    return bytes(created["topics"][0]["topic_id"])


def _consumer_heartbeat(client: WireClient, names: list[str]) -> dict[str, Any]:
    return client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
        "group_id": "g", "member_id": "m1", "member_epoch": 0, "instance_id": None, "rack_id": None, "rebalance_timeout_ms": 30_000,
        "subscribed_topic_names": names, "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": []})


def _streams_heartbeat(client: WireClient, epoch: int) -> dict[str, Any]:
    joining = epoch == 0
    topology = {"epoch": 0, "subtopologies": [{"subtopology_id": "0", "source_topics": ["s"], "source_topic_regex": [], "state_changelog_topics": [],
                                               "repartition_sink_topics": [], "repartition_source_topics": [], "copartition_groups": []}]}
    return client.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
        "group_id": "sg", "member_id": "sm1", "member_epoch": epoch, "endpoint_information_epoch": 0, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": 30_000 if joining else -1, "topology": topology if joining else None, "active_tasks": [] if joining else None,
        "standby_tasks": [] if joining else None, "warmup_tasks": [] if joining else None, "process_id": "p1", "user_endpoint": None,
        "client_tags": [] if joining else None, "task_offsets": None, "task_end_offsets": None, "shutdown_application": False})


def _commit(client: WireClient, partitions: list[tuple[str, int]]) -> None:
    topics: dict[str, list[dict[str, Any]]] = {}
    for topic, partition in partitions:
        topics.setdefault(topic, []).append({"partition_index": partition, "committed_offset": 5, "committed_leader_epoch": -1,
                                             "commit_timestamp": -1, "committed_metadata": ""})
    answer = client.call(ApiKey.OFFSET_COMMIT, 9, {"group_id": "o", "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
                                                   "retention_time_ms": -1, "topics": [{"name": t, "partitions": p} for t, p in topics.items()]})
    assert {p["error_code"] for t in answer["topics"] for p in t["partitions"]} == {ErrorCode.NONE}


def _offset_partition(key: bytes) -> tuple[str, int]:
    group_size = struct.unpack_from(">h", key, 2)[0]
    topic_size = struct.unpack_from(">h", key, 4 + group_size)[0]
    start = 6 + group_size
    return key[start:start + topic_size].decode(), struct.unpack_from(">i", key, start + topic_size)[0]


def _values(data_dir: pathlib.Path, record_type: int, group: str) -> list[bytes | None]:
    marker = group.encode()
    return [value for _, batch in _batches(data_dir, OFFSETS) for key, value in batch
            if _type(key) == record_type and key[4:4 + len(marker)] == marker and struct.unpack_from(">h", key, 2)[0] == len(marker)]


def test_group_records_carry_kafkas_hashes_names_states_and_tombstone_order(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=tmp_path, group_streams_initial_rebalance_delay_ms=0) as broker:
        client = WireClient(broker.bootstrap_servers)
        ids = {name: _create(client, name, partitions) for name, partitions in (("t", 3), ("s", 2), ("alpha", 4), ("zz", 1))}
        assert _consumer_heartbeat(client, ["t", "alpha"])["error_code"] == ErrorCode.NONE
        joined = _streams_heartbeat(client, 0)
        assert joined["error_code"] == ErrorCode.NONE
        assert _streams_heartbeat(client, joined["member_epoch"])["error_code"] == ErrorCode.NONE
        # Committed in this order, Kafka 4.4 deletes them in the order of `expected` below.
        _commit(client, [("t", 2), ("t", 0), ("t", 1), ("s", 1), ("s", 0), ("alpha", 3), ("alpha", 0), ("alpha", 1), ("alpha", 2), ("zz", 0)])
        _commit(client, [("s", 1)])
        assert client.call(ApiKey.DELETE_GROUPS, 2, {"groups_names": ["o"]})["results"][0]["error_code"] == ErrorCode.NONE
        client.close()

    def hash_of(*names: str) -> int:
        return kafka_group_hash({name: kafka_topic_hash(ids[name], name, partitions) for name, partitions in (("t", 3), ("s", 2), ("alpha", 4)) if name in names})

    consumer_epoch = _values(tmp_path, 3, "g")[-1]
    assert consumer_epoch == struct.pack(">hi", 0, 2) + b"\x01\x00\x08" + struct.pack(">q", hash_of("t", "alpha"))
    member = _values(tmp_path, 5, "g")[-1]
    assert member is not None and b"\x03\x06alpha\x02t\x01" in member  # subscribed topic names sorted, then regex ""

    streams_epoch = _values(tmp_path, 17, "sg")[-1]
    assert streams_epoch is not None and streams_epoch[6:14] == struct.pack(">q", hash_of("s"))
    states = [value[10] for value in _values(tmp_path, 22, "sg") if value is not None]
    assert states and set(states) == {1}  # STABLE

    tombstones = [(_offset_partition(key), value) for _, batch in _batches(tmp_path, OFFSETS) for key, value in batch
                  if _type(key) in (0, 1) and b"\x00\x01o" == key[2:5] and value is None]
    expected = [("alpha", 2), ("alpha", 0), ("alpha", 1), ("alpha", 3), ("s", 0), ("s", 1), ("t", 0), ("t", 2), ("t", 1), ("zz", 0)]
    assert [partition for partition, _ in tombstones] == expected


def test_the_hash_covers_the_brokers_rack_and_only_the_topics_of_members_staying(tmp_path: pathlib.Path) -> None:
    """With broker.rack set, each partition's replica has that rack (Kafka 4.4 with broker.rack=rk1
    wrote these hashes for its topics); a member leaving bumps the epoch with the hash of what the
    others subscribe to (computeSubscribedTopicNamesWithoutDeletedMembers)."""
    reference = {"t": (bytes.fromhex("6e0e6041dcc84907a15cdf424e21b5a7"), 3), "alpha": (bytes.fromhex("80336832cbf84d2eaa68f9c932c2d541"), 4)}

    def hashed(topics: dict[str, tuple[bytes, int]], *names: str) -> int:
        return kafka_group_hash({name: kafka_topic_hash(topics[name][0], name, topics[name][1], lambda partition: ["rk1"]) for name in names})

    assert hashed(reference, "t") == -55670409319310887
    assert hashed(reference, "t", "alpha") == -6982809138455137365

    def beat(client: WireClient, member: str, epoch: int, names: list[str]) -> None:
        answer = client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
            "group_id": "g2", "member_id": member, "member_epoch": epoch, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": 30_000 if epoch == 0 else -1, "subscribed_topic_names": names, "subscribed_topic_regex": None,
            "server_assignor": None, "topic_partitions": [] if epoch == 0 else None})
        assert answer["error_code"] == ErrorCode.NONE

    with running_broker(data_dir=tmp_path, broker_rack="rk1", group_streams_initial_rebalance_delay_ms=0) as broker:
        client = WireClient(broker.bootstrap_servers)
        topics = {name: (_create(client, name, partitions), partitions) for name, partitions in (("t", 3), ("alpha", 4), ("s", 2))}
        beat(client, "m1", 0, ["t"])
        beat(client, "m2", 0, ["alpha"])
        beat(client, "m2", -1, ["alpha"])
        assert _streams_heartbeat(client, 0)["error_code"] == ErrorCode.NONE
        client.close()
    epochs = [value for value in _values(tmp_path, 3, "g2") if value is not None]
    assert [value[:6] for value in epochs] == [struct.pack(">hi", 0, epoch) for epoch in (2, 3, 4)]
    assert [struct.unpack_from(">q", value, 9)[0] for value in epochs] == [hashed(topics, "t"), hashed(topics, "t", "alpha"), hashed(topics, "t")]
    streams_epoch = _values(tmp_path, 17, "sg")[-1]
    assert streams_epoch is not None and streams_epoch[6:14] == struct.pack(">q", hashed(topics, "s"))


def test_expired_offsets_are_tombstoned_in_kafkas_map_order(tmp_path: pathlib.Path) -> None:
    """OffsetMetadataManager.cleanupExpiredOffsets walks the same maps as deleteAllOffsets."""
    committed = [("t", 2), ("t", 0), ("t", 1), ("s", 1), ("s", 0), ("alpha", 3), ("alpha", 0), ("alpha", 1), ("alpha", 2), ("zz", 0)]
    topics: dict[str, list[dict[str, Any]]] = {}
    for topic, partition in committed:
        topics.setdefault(topic, []).append({"partition_index": partition, "committed_offset": 5, "committed_metadata": ""})
    with running_broker(data_dir=tmp_path, offsets_retention_check_interval_ms=100) as broker:
        client = WireClient(broker.bootstrap_servers)
        for name, partitions in (("t", 3), ("s", 2), ("alpha", 4), ("zz", 1)):
            _create(client, name, partitions)
        # Version 2's retention time makes each offset expire 1 ms after its commit.
        answer = client.call(ApiKey.OFFSET_COMMIT, 2, {"group_id": "o", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": 1,
                                                       "topics": [{"name": t, "partitions": p} for t, p in topics.items()]})
        assert {p["error_code"] for t in answer["topics"] for p in t["partitions"]} == {ErrorCode.NONE}
        deadline = time.monotonic() + 10
        while client.call(ApiKey.OFFSET_FETCH, 7, {"group_id": "o", "topics": None, "require_stable": False})["topics"] and time.monotonic() < deadline:
            time.sleep(0.05)
        client.close()
    tombstones = [_offset_partition(key) for _, batch in _batches(tmp_path, OFFSETS) for key, value in batch
                  if _type(key) in (0, 1) and b"\x00\x01o" == key[2:5] and value is None]
    assert tombstones == [("alpha", 2), ("alpha", 0), ("alpha", 1), ("alpha", 3), ("s", 0), ("s", 1), ("t", 0), ("t", 2), ("t", 1), ("zz", 0)]


def test_names_read_back_sorted_are_the_same_subscription(tmp_path: pathlib.Path) -> None:
    """Kafka compares a member's subscribed names as a set (ConsumerGroupMember.equals): after a
    restart reads them back sorted, the same names sent in another order store no new record."""
    with running_broker(data_dir=tmp_path) as broker:
        client = WireClient(broker.bootstrap_servers)
        _create(client, "t", 1)
        _create(client, "alpha", 1)
        epoch = _consumer_heartbeat(client, ["t", "alpha"])["member_epoch"]
        client.close()
    with running_broker(data_dir=tmp_path) as broker:
        client = WireClient(broker.bootstrap_servers)
        answer = client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
            "group_id": "g", "member_id": "m1", "member_epoch": epoch, "instance_id": None, "rack_id": None, "rebalance_timeout_ms": -1,
            "subscribed_topic_names": ["t", "alpha"], "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": None})
        assert answer["error_code"] == ErrorCode.NONE
        client.close()
    assert len(_values(tmp_path, 5, "g")) == 1
