"""A share group's metadata hash is Kafka 4.4's (ModernGroup.computeMetadataHash of the
subscribed topics that exist), and the group epoch moves when it changes, as on the reference
broker: partitions added to a subscribed topic bump the epoch at the next heartbeat (the new
hash, the new partitions initializing) and again once they are initialized (assignable), two
bumps where the partitions alone would make one; so does a change made while the broker was
down, against the hash the epoch record keeps. A member's subscription is a set, written sorted."""

from __future__ import annotations

import pathlib
import time

from kafka.admin import KafkaAdminClient, NewPartitions, NewTopic  # type: ignore[import-untyped]

from ottla.server.coordinator import OFFSETS, CoordinatorLog
from ottla.server.groups import share_records
from ottla.server.java_hashing import kafka_group_hash, kafka_topic_hash_on_rack
from ottla.storage import Storage
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from tests.share_member import ShareMember


def _topic_id(broker: ThreadedBroker, name: str) -> bytes:
    assert broker.broker is not None and broker.broker.storage is not None
    info = broker.broker.storage.topic(name)
    assert info is not None
    return bytes(info.topic_id)


def _epochs(member: ShareMember, group_id: str) -> tuple[int, int, list[int]]:
    """(group epoch, member epoch, partitions of t) as ShareGroupDescribe answers them."""
    described = member.call(ApiKey.SHARE_GROUP_DESCRIBE, 1, {"group_ids": [group_id], "include_authorized_operations": False})["groups"][0]
    (only,) = described["members"]
    partitions = [p for topic in only["assignment"]["topic_partitions"] if topic["topic_name"] == "t" for p in topic["partitions"]]
    return described["group_epoch"], only["member_epoch"], partitions


def _records(data_dir: pathlib.Path, group_id: str, record_type: int) -> list[bytes]:
    storage = Storage.open(data_dir)
    try:
        return [bytes(value) for key, value in CoordinatorLog(storage, OFFSETS, 1).replay()
                if value is not None and (parsed := share_records.parse_key(key)) is not None
                and (parsed.group_id, parsed.record_type) == (group_id, record_type)]
    finally:
        storage.close()


def _beat_until(member: ShareMember, epoch: int, wanted: list[int]) -> tuple[int, list[tuple[int, int, list[int]]]]:
    """Heartbeats every 0.3 s until t's partitions `wanted` are assigned: the member's epoch
    and what each heartbeat left described."""
    seen = []
    for _ in range(20):
        time.sleep(0.3)
        beat = member.heartbeat("g", epoch, [])
        assert beat["error_code"] == 0
        epoch = beat["member_epoch"]
        seen.append(_epochs(member, "g"))
        if seen[-1][2] == wanted:
            break
    return epoch, seen


def test_partitions_added_bump_the_epoch_for_the_hash_and_again_once_initialized(tmp_path: pathlib.Path) -> None:
    """The reference broker, for t going from 2 to 3 partitions: the next heartbeat moves the
    group and member to epoch 4 (hash of t with 3 partitions, 2 initializing), a later one the
    group to 5 (2 initialized), and once the assignment interval passed the member to 5 with
    t's 0, 1 and 2. The epoch records carry Kafka's hash; a subscribed topic not created yet is
    left out of it."""
    with running_broker(data_dir=tmp_path) as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        try:
            admin.create_topics([NewTopic("t", 2, 1)])
            member = ShareMember(broker)
            member.join_until_assigned("g", ["t", "later"])
            assert _epochs(member, "g") == (3, 3, [0, 1])
            time.sleep(1.1)  # past share.assignment.interval.ms
            admin.create_partitions({"t": NewPartitions(3)})
            epoch, seen = _beat_until(member, 3, [0, 1, 2])
        finally:
            admin.close()
        topic_id = _topic_id(broker, "t")
        member.close()
    assert epoch == 5
    assert seen[0] == (4, 4, [0, 1])
    assert [group_epoch for group_epoch, _, _ in seen][-1] == 5
    assert sorted({group_epoch for group_epoch, _, _ in seen}) == [4, 5]
    hashes = {share_records.parse_group_metadata_value(value)
              for value in _records(tmp_path, "g", share_records.GROUP_METADATA)}
    assert hashes == {(2, kafka_group_hash({"t": kafka_topic_hash_on_rack(topic_id, "t", 2, None)})),
                      (3, kafka_group_hash({"t": kafka_topic_hash_on_rack(topic_id, "t", 2, None)})),
                      (4, kafka_group_hash({"t": kafka_topic_hash_on_rack(topic_id, "t", 3, None)})),
                      (5, kafka_group_hash({"t": kafka_topic_hash_on_rack(topic_id, "t", 3, None)}))}
    # The join's StatePartitionMetadata: 2 initializing in the heartbeat's batch, then initialized.
    states = [share_records.parse_state_partitions_value(value) for value in _records(tmp_path, "g", share_records.STATE_PARTITION_METADATA)]
    assert [([(t.name, t.partitions) for t in state.initializing], [(t.name, t.partitions) for t in state.initialized]) for state in states][-2:] == [
        ([("t", (2,))], [("t", (0, 1))]), ([], [("t", (0, 1, 2))])]


def test_a_topic_changed_while_the_broker_was_down_bumps_the_epoch(tmp_path: pathlib.Path) -> None:
    """The epoch record's hash, replayed, is what the first heartbeat after a load compares
    (Kafka's group starts with its metadata expired): t grown offline moves the group at once."""
    with running_broker(data_dir=tmp_path) as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        try:
            admin.create_topics([NewTopic("t", 2, 1)])
        finally:
            admin.close()
        member = ShareMember(broker)
        member.join_until_assigned("g", ["t"])
        member.close()
    storage = Storage.open(tmp_path)
    try:
        storage.add_partitions("t", 3)
    finally:
        storage.close()
    with running_broker(data_dir=tmp_path) as broker:
        again = ShareMember(broker)
        again.member_id = member.member_id
        beat = again.heartbeat("g", 3, [])
        assert (beat["error_code"], beat["member_epoch"]) == (0, 4)
        epoch, seen = _beat_until(again, 4, [0, 1, 2])
        assert (epoch, seen[-1]) == (5, (5, 5, [0, 1, 2]))
        again.close()


def test_a_subscription_is_a_set_written_sorted(tmp_path: pathlib.Path) -> None:
    """Kafka writes the names sorted (the reference broker: ["later", "t"] for ["t", "later"])
    and compares subscriptions as sets, so the same names in another order after a restart
    move nothing."""
    with running_broker(data_dir=tmp_path) as broker:
        member = ShareMember(broker)
        assert member.heartbeat("g", 0, ["t", "later"])["member_epoch"] == 2
        member.close()
    (value,) = _records(tmp_path, "g", share_records.MEMBER_METADATA)
    assert share_records.parse_member_metadata_value(value).subscribed_topic_names == ("later", "t")
    with running_broker(data_dir=tmp_path) as broker:
        again = ShareMember(broker)
        again.member_id = member.member_id
        beat = again.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {"group_id": "g", "member_id": member.member_id, "member_epoch": 2,
                                                            "rack_id": None, "subscribed_topic_names": ["t", "later"]})
        assert (beat["error_code"], beat["member_epoch"]) == (0, 2)
        again.close()
