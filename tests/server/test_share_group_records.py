"""A share group's own records are Kafka 4.4's, on the group's `__consumer_offsets` partition:
ShareGroupMemberMetadata, ShareGroupMetadata, the target assignment and current assignment
records, ShareGroupStatePartitionMetadata (kafka-dump-log --offsets-decoder reads them as it
reads the reference broker's after the same heartbeats). A restart
rebuilds the group from them, members included: a member heartbeating with its id and epoch
goes on as on Kafka, and ListGroups counts the share groups replayed (deleted ones too) in the
tables it orders by. A group Ottla kept as one JSON record in `__share_group_state` still
loads, and its deletion outlives a restart."""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

from kafka.admin import KafkaAdminClient, NewTopic  # type: ignore[import-untyped]

from ottla.server.coordinator import OFFSETS, SHARE_GROUP_STATE, SHARE_STATE_PARTITIONS, CoordinatorLog
from ottla.server.groups import share_records
from ottla.storage import Storage
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from tests.share_member import ShareMember

MEMBER, GROUP, TARGET_EPOCH, TARGET, CURRENT, STATE = 10, 11, 12, 13, 14, 15


def _create_topic(broker: ThreadedBroker, name: str, partitions: int) -> bytes:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    assert broker.broker is not None and broker.broker.storage is not None
    info = broker.broker.storage.topic(name)
    assert info is not None
    return bytes(info.topic_id)


def _share_group_records(data_dir: pathlib.Path, group_id: str) -> list[tuple[int, bool, bytes | None]]:
    """(record type, whether a member's, value) of the group's records in `__consumer_offsets`."""
    storage = Storage.open(data_dir)
    try:
        found = []
        for key, value in CoordinatorLog(storage, OFFSETS, 1).replay():
            parsed = share_records.parse_key(key)
            if parsed is not None and parsed.group_id == group_id:
                found.append((parsed.record_type, parsed.member_id is not None, value))
        return found
    finally:
        storage.close()


def _leave(member: ShareMember, group_id: str) -> int:
    return int(member.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {"group_id": group_id, "member_id": member.member_id, "member_epoch": -1,
                                                             "rack_id": None, "subscribed_topic_names": None})["error_code"])


def _delete(member: ShareMember, group_id: str) -> int:
    return int(member.call(ApiKey.DELETE_GROUPS, 2, {"groups_names": [group_id]})["results"][0]["error_code"])


def _describe(member: ShareMember, group_id: str) -> dict[str, Any]:
    return member.call(ApiKey.SHARE_GROUP_DESCRIBE, 1, {"group_ids": [group_id], "include_authorized_operations": False})["groups"][0]


def _listed(member: ShareMember) -> list[str]:
    return [group["group_id"] for group in member.call(ApiKey.LIST_GROUPS, 5, {"states_filter": [], "types_filter": []})["groups"]]


def test_a_share_groups_records_are_kafkas_on_its_offsets_partition(tmp_path: pathlib.Path) -> None:
    """The records the reference broker wrote for the same join, assignment, leave and
    DeleteGroups, in its order: the topic initializing in the join's batch, initialized in the
    next, and before the deletion's tombstones a StatePartitionMetadata of the topics deleting."""
    with running_broker(data_dir=tmp_path) as broker:
        topic_id = _create_topic(broker, "t", 2)
        member = ShareMember(broker)
        assert member.join_until_assigned("g", ["t"]) == [{"topic_id": topic_id, "partitions": [0, 1]}]
        time.sleep(1.1)  # past share.assignment.interval.ms, as the reference broker's leave was
        assert _leave(member, "g") == 0
        assert _delete(member, "g") == 0
        member.close()
    records = _share_group_records(tmp_path, "g")
    assert [(record_type, of_member, value is None) for record_type, of_member, value in records] == [
        (MEMBER, True, False), (GROUP, False, False), (TARGET, True, False), (TARGET_EPOCH, False, False), (CURRENT, True, False),
        (STATE, False, False), (STATE, False, False),
        (GROUP, False, False), (TARGET, True, False), (TARGET_EPOCH, False, False), (CURRENT, True, False),
        (CURRENT, True, True), (TARGET, True, True), (MEMBER, True, True), (GROUP, False, False), (TARGET_EPOCH, False, False),
        (STATE, False, False), (TARGET_EPOCH, False, True), (STATE, False, True), (GROUP, False, True),
    ]
    values = [value for _, _, value in records]
    # Version 0; no rack; client id, host; subscribed to t; no tagged fields.
    assert values[0] == b"\x00\x00" + b"\x00" + b"\x06ottla" + b"\x0b/127.0.0.1" + b"\x02\x02t" + b"\x00"
    # Epoch 2 (its metadata hash: tests/server/test_share_group_hash.py).
    assert values[1][:6] == b"\x00\x00" + (2).to_bytes(4, "big")
    # t initializing, partitions 0 and 1; then t initialized; no deleting topic.
    t_partitions = topic_id + b"\x02t" + b"\x03" + (0).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"\x00"
    assert values[5] == b"\x00\x00" + b"\x02" + t_partitions + b"\x01" + b"\x01" + b"\x00"
    assert values[6] == b"\x00\x00" + b"\x01" + b"\x02" + t_partitions + b"\x01" + b"\x00"
    # Member epoch 3, previous 2, STABLE, t's partitions 0 and 1.
    assert values[10] == (b"\x00\x00" + (3).to_bytes(4, "big") + (2).to_bytes(4, "big") + b"\x00" + b"\x02" + topic_id + b"\x03"
                         + (0).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"\x00" + b"\x00")
    # After the leave: the target epoch of a group without members, with no timestamp (its tagged field).
    assert values[15] == b"\x00\x00" + (4).to_bytes(4, "big") + b"\x00"
    # Before the deletion's tombstones: t deleting (id and name), none initializing or initialized.
    assert values[16] == b"\x00\x00" + b"\x01" + b"\x01" + b"\x02" + topic_id + b"\x02t" + b"\x00" + b"\x00"
    storage = Storage.open(tmp_path)
    try:
        assert storage.topic(SHARE_GROUP_STATE.name) is None or not any(
            key.startswith(b"[") for key, _ in CoordinatorLog(storage, SHARE_GROUP_STATE, SHARE_STATE_PARTITIONS, None).replay())
    finally:
        storage.close()


def test_a_member_goes_on_after_a_restart(tmp_path: pathlib.Path) -> None:
    """Kafka 4.4 answers a member's heartbeat with its id and epoch after a restart as before it
    (checked against the reference broker): its epoch, no assignment (unchanged)."""
    with running_broker(data_dir=tmp_path) as broker:
        topic_id = _create_topic(broker, "t", 2)
        member = ShareMember(broker)
        member.join_until_assigned("g", ["t"])
        epoch = member.heartbeat("g", 3, [])["member_epoch"]
        member.close()
    with running_broker(data_dir=tmp_path) as broker:
        again = ShareMember(broker)
        again.member_id = member.member_id
        beat = again.heartbeat("g", epoch, [])
        assert (beat["error_code"], beat["member_epoch"], beat["assignment"]) == (0, epoch, None)
        described = _describe(again, "g")
        assert (described["group_state"], described["group_epoch"], described["assignment_epoch"]) == ("Stable", epoch, epoch)
        assert [(m["member_id"], m["member_epoch"], m["assignment"]["topic_partitions"]) for m in described["members"]] == [
            (member.member_id, epoch, [{"topic_id": topic_id, "topic_name": "t", "partitions": [0, 1]}])]
        again.close()


def test_list_groups_counts_the_share_groups_replayed_at_a_restart(tmp_path: pathlib.Path) -> None:
    """A shard's table of groups keeps the size it grew to: s0, s1 and s3 made it four slots,
    which a restart's replay grows it to again though s0 is deleted; in two slots s3 would come
    first (the reference broker lists s1, s3 before and after its restart)."""
    with running_broker(data_dir=tmp_path, offsets_topic_num_partitions=1) as broker:
        member = ShareMember(broker)
        for group_id in ("s1", "s3", "s0"):
            assert member.heartbeat(group_id, 0, ["nothing"])["error_code"] == 0
        assert (_leave(member, "s0"), _delete(member, "s0")) == (0, 0)
        assert _listed(member) == ["s1", "s3"]
        member.close()
    with running_broker(data_dir=tmp_path, offsets_topic_num_partitions=1) as broker:
        again = ShareMember(broker)
        assert _listed(again) == ["s1", "s3"]
        again.close()


def test_a_group_kept_as_json_still_loads_and_its_deletion_lasts(tmp_path: pathlib.Path) -> None:
    """A data dir from before: the group's one JSON record in `__share_group_state` (as Ottla
    wrote it) loads; DeleteGroups tombstones that record too, so the group stays deleted."""
    with running_broker(data_dir=tmp_path) as broker:
        topic_id = _create_topic(broker, "t", 2)
    storage = Storage.open(tmp_path)
    try:
        CoordinatorLog(storage, SHARE_GROUP_STATE, SHARE_STATE_PARTITIONS, None).append("old", [(
            json.dumps(["group", "old"]).encode(),
            json.dumps({"epoch": 5, "topics": {topic_id.hex(): "t"}, "initialized": {topic_id.hex(): [0, 1]}}).encode())], 0)
    finally:
        storage.close()
    with running_broker(data_dir=tmp_path) as broker:
        member = ShareMember(broker)
        described = _describe(member, "old")
        assert (described["error_code"], described["group_state"], described["group_epoch"]) == (0, "Empty", 5)
        assert _delete(member, "old") == 0
        member.close()
    with running_broker(data_dir=tmp_path) as broker:
        member = ShareMember(broker)
        assert _delete(member, "old") == 69  # GROUP_ID_NOT_FOUND
        member.close()
