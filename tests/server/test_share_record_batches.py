"""A share group's records in `__consumer_offsets` come in the batches Kafka 4.4's coordinator
runtime appends them in: each write operation's records together, in their order. The
sequence below is the reference broker's for the same requests (compat.kafka.ReferenceKafka,
its log read with kafka-dump-log --offsets-decoder), with the default 1 s
share.assignment.interval.ms:

- a heartbeat that moves the group epoch writes it with the target assignment it computes
  and the member's new current assignment; the epoch goes alone when the interval holds the
  target back (GroupMetadataManager.shareGroupHeartbeat);
- a heartbeat finding partitions initialized that the target lacks bumps the epoch, but not
  while a target is pending anyway (initializedAssignmentPending);
- a member's targets are listed in the order of TargetAssignmentBuilder's HashMap of members;
- a leave writes the member's tombstones and the next epoch, no target: the next heartbeat
  computes it; the last leave writes the target epoch too (shareGroupFenceMember);
- DeleteShareGroupOffsets writes the topic as deleting, then, its state deleted, without it;
  a second, for the topic no longer there, rewrites the record as it stands.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any

from kafka.admin import KafkaAdminClient, NewPartitions, NewTopic  # type: ignore[import-untyped]

from ottla.server.groups import share_records
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.records import iter_records, scan_batches
from tests.share_member import ShareMember

# Java's HashMap of these two lists B first; sorted, A comes first.
MEMBER_A, MEMBER_B = "2U7MpOzmQuCUnWQYSHOoeQ", "6OdWr6zZSHCM1UZyLcLWwA"
INTERVAL_S = 1.1  # past share.assignment.interval.ms

EXPECTED_BATCHES = [
    # A joins; t's partitions are initialized, in a batch of their own.
    ["A member", "epoch 2", "A target", "target epoch 2", "A current 2", "topics initializing t[0, 1]"],
    ["topics initialized t[0, 1]"],
    # Past the interval: the epoch bump for the initialized partitions, with the assignment.
    ["epoch 3", "A target", "target epoch 3", "A current 3"],
    # t grows within the interval: the epoch alone, partition 2 initializing then initialized;
    # the next heartbeat, a target pending, bumps nothing; the one past the interval assigns.
    ["epoch 4", "topics initializing t[2] initialized t[0, 1]"],
    ["topics initialized t[0, 1, 2]"],
    ["A target", "target epoch 4", "A current 4"],
    # B joins: both targets, B's first.
    ["B member", "epoch 5", "B target", "A target", "target epoch 5", "B current 5"],
    ["A current 5"],
    # A leaves: no target until B's heartbeat.
    ["A current gone", "A target gone", "A member gone", "epoch 6"],
    ["B target", "target epoch 6", "B current 6"],
    # B leaves last: the target epoch follows the group's.
    ["B current gone", "B target gone", "B member gone", "epoch 7", "target epoch 7"],
    # DeleteShareGroupOffsets of t, then again.
    ["topics deleting t"],
    ["topics"],
    ["topics"],
]


def _topics(state: share_records.StatePartitions) -> str:
    parts = ["topics"]
    for label, topics in (("initializing", state.initializing), ("initialized", state.initialized)):
        if topics:
            parts.append(f"{label} " + " ".join(f"{topic.name}{list(topic.partitions)}" for topic in topics))
    if state.deleting:
        parts.append("deleting " + " ".join(topic.name for topic in state.deleting))
    return " ".join(parts)


def _describe(key: bytes, value: bytes | None, who: dict[str, str]) -> str:
    parsed = share_records.parse_key(key)
    assert parsed is not None
    member = who.get(parsed.member_id or "", "")
    kind = {share_records.MEMBER_METADATA: "member", share_records.GROUP_METADATA: "epoch",
            share_records.TARGET_ASSIGNMENT_METADATA: "target epoch", share_records.TARGET_ASSIGNMENT_MEMBER: "target",
            share_records.CURRENT_MEMBER_ASSIGNMENT: "current", share_records.STATE_PARTITION_METADATA: "topics"}[parsed.record_type]
    if value is None:
        return f"{member} {kind} gone".strip()
    if parsed.record_type == share_records.GROUP_METADATA:
        return f"epoch {share_records.parse_group_metadata_value(value)[0]}"
    if parsed.record_type == share_records.TARGET_ASSIGNMENT_METADATA:
        return f"target epoch {share_records.parse_target_assignment_metadata_value(value)[0]}"
    if parsed.record_type == share_records.CURRENT_MEMBER_ASSIGNMENT:
        return f"{member} current {share_records.parse_current_assignment_value(value).member_epoch}"
    if parsed.record_type == share_records.STATE_PARTITION_METADATA:
        return _topics(share_records.parse_state_partitions_value(value))
    return f"{member} {kind}"


def offsets_batches(partition_dir: pathlib.Path, group_id: str, who: dict[str, str]) -> list[list[str]]:
    """The group's records in the segments of a `__consumer_offsets` partition's directory,
    batch by batch (Ottla's and Kafka's alike)."""
    found = []
    for segment in sorted(partition_dir.glob("*.log")):
        for header, batch in scan_batches(segment.read_bytes()):
            records = [(bytes(record.key), None if record.value is None else bytes(record.value)) for record in iter_records(batch)
                       if record.key is not None]
            described = [_describe(key, value, who) for key, value in records
                         if (parsed := share_records.parse_key(key)) is not None and parsed.group_id == group_id]
            if described:
                found.append(described)
    return found


def _heartbeat(member: ShareMember, epoch: int) -> int:
    beat = member.heartbeat("g", epoch, ["t"])
    assert beat["error_code"] == 0, beat
    return int(beat["member_epoch"])


def _leave(member: ShareMember) -> None:
    left = member.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {"group_id": "g", "member_id": member.member_id, "member_epoch": -1,
                                                         "rack_id": None, "subscribed_topic_names": None})
    assert left["error_code"] == 0, left


def _delete_offsets(member: ShareMember) -> list[tuple[int, str | None]]:
    answer = member.call(ApiKey.DELETE_SHARE_GROUP_OFFSETS, 0, {"group_id": "g", "topics": [{"topic_name": "t"}]})
    assert answer["error_code"] == 0, answer
    return [(topic["error_code"], topic["error_message"]) for topic in answer["responses"]]


def rebalance_and_delete(bootstrap: str) -> None:
    """The requests of EXPECTED_BATCHES, to a broker with one `__consumer_offsets` partition."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic("t", 2, 1)])
        broker: Any = type("Broker", (), {"bootstrap_servers": bootstrap})
        a, b = ShareMember(broker), ShareMember(broker)
        a.member_id, b.member_id = MEMBER_A, MEMBER_B
        # The group coordinator's partition exists once looked for.
        a.call(ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["g"]})
        epoch_a = 0
        for _ in range(100):
            beat = a.heartbeat("g", 0, ["t"])
            if beat["error_code"] == 0:
                epoch_a = int(beat["member_epoch"])
                break
            time.sleep(0.2)
        time.sleep(INTERVAL_S)
        # The reference broker may take longer to initialize t's partitions.
        while (epoch := _heartbeat(a, epoch_a)) == epoch_a:
            time.sleep(0.2)
        epoch_a = epoch
        admin.create_partitions({"t": NewPartitions(3)})
        time.sleep(0.25)
        epoch_a = _heartbeat(a, epoch_a)
        time.sleep(0.1)
        epoch_a = _heartbeat(a, epoch_a)
        time.sleep(INTERVAL_S)
        epoch_a = _heartbeat(a, epoch_a)
        time.sleep(INTERVAL_S)
        epoch_b = _heartbeat(b, 0)
        epoch_a = _heartbeat(a, epoch_a)
        time.sleep(INTERVAL_S)
        _leave(a)
        epoch_b = _heartbeat(b, epoch_b)
        _leave(b)
        assert _delete_offsets(a) == [(0, None)]
        assert _delete_offsets(a) == [(3, "There is no offset information to delete.")]
        a.close()
        b.close()
    finally:
        admin.close()


def test_a_share_groups_records_come_in_kafkas_batches(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=tmp_path, offsets_topic_num_partitions=1) as broker:
        rebalance_and_delete(broker.bootstrap_servers)
    assert offsets_batches(tmp_path / "__consumer_offsets-0", "g", {MEMBER_A: "A", MEMBER_B: "B"}) == EXPECTED_BATCHES
