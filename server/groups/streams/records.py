"""The streams group records of `__consumer_offsets`, in Kafka's byte layout.

Kafka 4.4's group coordinator keeps a streams group as these keyed records
(group-coordinator/src/main/resources/common/message/StreamsGroup*Key.json, *Value.json);
the key's version is the record type. Keys are the old non-flexible form, values version 0
of a flexible message:

    17 StreamsGroupMetadata                group -> group epoch, metadata hash, validated topology epoch,
                                           topology description epochs (KIP-1331)
    19 StreamsGroupMemberMetadata          group, member -> instance, rack, client, topology epoch, process, endpoint, tags
    20 StreamsGroupTargetAssignmentMetadata group -> assignment epoch
    21 StreamsGroupTargetAssignmentMember  group, member -> target active/standby/warmup tasks
    22 StreamsGroupCurrentMemberAssignment group, member -> epochs, state, tasks, tasks pending revocation
    23 StreamsGroupTopology                group -> the topology the first member sent

Type 18 (StreamsGroupPartitionMetadata) is what Kafka 4.0/4.1 wrote before the metadata hash;
a log holding it is read past. A null value is a tombstone.

The layouts below are Kafka's field lists (without their docs), encoded by the same schema
builder as the wire protocol, so they cannot drift from the JSON form they were taken from.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from ottla.server.coordinator.log import RecordFormatError
from ottla.wire.messages import parse_definition
from ottla.wire.errors import MalformedFrame
from ottla.wire.schema import Message, build_struct, decode_interpreted, encode_interpreted

GROUP_METADATA = 17
PARTITION_METADATA = 18
MEMBER_METADATA = 19
TARGET_ASSIGNMENT_METADATA = 20
TARGET_ASSIGNMENT_MEMBER = 21
CURRENT_MEMBER_ASSIGNMENT = 22
TOPOLOGY = 23
RECORD_TYPES = frozenset({GROUP_METADATA, PARTITION_METADATA, MEMBER_METADATA, TARGET_ASSIGNMENT_METADATA, TARGET_ASSIGNMENT_MEMBER, CURRENT_MEMBER_ASSIGNMENT, TOPOLOGY})
_MEMBER_KEYED = frozenset({MEMBER_METADATA, TARGET_ASSIGNMENT_MEMBER, CURRENT_MEMBER_ASSIGNMENT})

_TASK_IDS = '{"name": "TaskIds", "versions": "0+", "fields": [{"name": "SubtopologyId", "type": "string", "versions": "0+"}, {"name": "Partitions", "type": "[]int32", "versions": "0+"}]}'
_TASK_IDS_WITH_EPOCHS = (
    '{"name": "TaskIds", "versions": "0+", "fields": [{"name": "SubtopologyId", "type": "string", "versions": "0+"},'
    ' {"name": "Partitions", "type": "[]int32", "versions": "0+"},'
    ' {"name": "AssignmentEpochs", "versions": "0+", "nullableVersions": "0+", "taggedVersions": "0+", "tag": 0, "type": "[]int32", "default": null}]}'
)
_TOPIC_INFO = (
    '{"name": "TopicInfo", "versions": "0+", "fields": [{"name": "Name", "type": "string", "versions": "0+"},'
    ' {"name": "Partitions", "type": "int32", "versions": "0+"}, {"name": "ReplicationFactor", "type": "int16", "versions": "0+"},'
    ' {"name": "TopicConfigs", "type": "[]TopicConfig", "versions": "0+"}]},'
    ' {"name": "TopicConfig", "versions": "0+", "fields": [{"name": "key", "type": "string", "versions": "0+"}, {"name": "value", "type": "string", "versions": "0+"}]}'
)

_VALUES = {
    GROUP_METADATA: """{"fields": [
        {"name": "Epoch", "versions": "0+", "type": "int32"},
        {"name": "MetadataHash", "versions": "0+", "type": "int64"},
        {"name": "ValidatedTopologyEpoch", "versions": "0+", "taggedVersions": "0+", "tag": 0, "default": -1, "type": "int32"},
        {"name": "LastAssignmentConfigs", "versions": "0+", "taggedVersions": "0+", "nullableVersions": "0+", "tag": 1, "default": null,
         "type": "[]LastAssignmentConfig", "fields": [{"name": "Key", "type": "string", "versions": "0+"}, {"name": "Value", "type": "string", "versions": "0+"}]},
        {"name": "StoredDescriptionTopologyEpoch", "versions": "0+", "taggedVersions": "0+", "tag": 2, "default": -1, "type": "int32"},
        {"name": "FailedDescriptionTopologyEpoch", "versions": "0+", "taggedVersions": "0+", "tag": 3, "default": -1, "type": "int32"}]}""",
    MEMBER_METADATA: """{"fields": [
        {"name": "InstanceId", "versions": "0+", "nullableVersions": "0+", "type": "string"},
        {"name": "RackId", "versions": "0+", "nullableVersions": "0+", "type": "string"},
        {"name": "ClientId", "versions": "0+", "type": "string"},
        {"name": "ClientHost", "versions": "0+", "type": "string"},
        {"name": "RebalanceTimeoutMs", "type": "int32", "versions": "0+", "default": -1},
        {"name": "TopologyEpoch", "type": "int32", "versions": "0+"},
        {"name": "ProcessId", "type": "string", "versions": "0+"},
        {"name": "UserEndpoint", "type": "Endpoint", "versions": "0+", "nullableVersions": "0+", "default": "null"},
        {"name": "ClientTags", "type": "[]KeyValue", "versions": "0+"}],
      "commonStructs": [
        {"name": "Endpoint", "versions": "0+", "fields": [{"name": "Host", "type": "string", "versions": "0+"}, {"name": "Port", "type": "uint16", "versions": "0+"}]},
        {"name": "KeyValue", "versions": "0+", "fields": [{"name": "Key", "type": "string", "versions": "0+"}, {"name": "Value", "type": "string", "versions": "0+"}]}]}""",
    TARGET_ASSIGNMENT_METADATA: """{"fields": [
        {"name": "AssignmentEpoch", "versions": "0+", "type": "int32"},
        {"name": "AssignmentTimestamp", "versions": "0+", "taggedVersions": "0+", "tag": 0, "type": "int64", "default": 0}]}""",
    TARGET_ASSIGNMENT_MEMBER: """{"fields": [
        {"name": "ActiveTasks", "versions": "0+", "type": "[]TaskIds"},
        {"name": "StandbyTasks", "versions": "0+", "type": "[]TaskIds"},
        {"name": "WarmupTasks", "versions": "0+", "type": "[]TaskIds"}],
      "commonStructs": [%s]}""" % _TASK_IDS,
    CURRENT_MEMBER_ASSIGNMENT: """{"fields": [
        {"name": "MemberEpoch", "versions": "0+", "type": "int32"},
        {"name": "PreviousMemberEpoch", "versions": "0+", "type": "int32"},
        {"name": "State", "versions": "0+", "type": "int8"},
        {"name": "ActiveTasks", "versions": "0+", "type": "[]TaskIds"},
        {"name": "StandbyTasks", "versions": "0+", "type": "[]TaskIds"},
        {"name": "WarmupTasks", "versions": "0+", "type": "[]TaskIds"},
        {"name": "ActiveTasksPendingRevocation", "versions": "0+", "type": "[]TaskIds"},
        {"name": "StandbyTasksPendingRevocation", "versions": "0+", "type": "[]TaskIds"},
        {"name": "WarmupTasksPendingRevocation", "versions": "0+", "type": "[]TaskIds"}],
      "commonStructs": [%s]}""" % _TASK_IDS_WITH_EPOCHS,
    TOPOLOGY: """{"fields": [
        {"name": "Epoch", "type": "int32", "versions": "0+"},
        {"name": "Subtopologies", "type": "[]Subtopology", "versions": "0+", "fields": [
          {"name": "SubtopologyId", "type": "string", "versions": "0+"},
          {"name": "SourceTopics", "type": "[]string", "versions": "0+"},
          {"name": "SourceTopicRegex", "type": "[]string", "versions": "0+"},
          {"name": "StateChangelogTopics", "type": "[]TopicInfo", "versions": "0+"},
          {"name": "RepartitionSinkTopics", "type": "[]string", "versions": "0+"},
          {"name": "RepartitionSourceTopics", "type": "[]TopicInfo", "versions": "0+"},
          {"name": "CopartitionGroups", "type": "[]CopartitionGroup", "versions": "0+", "fields": [
            {"name": "SourceTopics", "type": "[]int16", "versions": "0+"},
            {"name": "SourceTopicRegex", "type": "[]int16", "versions": "0+"},
            {"name": "RepartitionSourceTopics", "type": "[]int16", "versions": "0+"}]}]}],
      "commonStructs": [%s]}""" % _TOPIC_INFO,
}

# (subtopology id -> partitions): the task sets of every assignment in these records.
Tasks = dict[str, frozenset[int]]


@functools.cache
def _value_struct(record_type: int) -> Message:
    return build_struct(parse_definition(_VALUES[record_type])["fields"], 0, True)


@functools.cache
def _key_struct(member_keyed: bool) -> Message:
    fields = [{"name": "GroupId", "type": "string", "versions": "0"}]
    if member_keyed:
        fields.append({"name": "MemberId", "type": "string", "versions": "0"})
    return build_struct(fields, 0, False)


@dataclass(slots=True, frozen=True)
class RecordKey:
    record_type: int
    group_id: str
    member_id: str = ""


def key(record_type: int, group_id: str, member_id: str | None = None) -> bytes:
    body = {"group_id": group_id} if member_id is None else {"group_id": group_id, "member_id": member_id}
    return record_type.to_bytes(2, "big", signed=True) + encode_interpreted(_key_struct(member_id is not None), body)


def parse_key(data: bytes | memoryview) -> RecordKey | None:
    """The key of a streams group record, or None for any other record type."""
    if len(data) < 2:
        return None
    record_type = int.from_bytes(data[:2], "big", signed=True)
    if record_type not in RECORD_TYPES:
        return None
    try:
        body, _ = decode_interpreted(_key_struct(record_type in _MEMBER_KEYED), bytes(data[2:]))
    except MalformedFrame as exc:
        raise RecordFormatError(str(exc)) from exc
    return RecordKey(record_type, body["group_id"], body.get("member_id", ""))


def value(record_type: int, body: dict[str, Any]) -> bytes:
    """Version 0 of the record's value; fields left out take Kafka's defaults."""
    return b"\x00\x00" + encode_interpreted(_value_struct(record_type), body)


def parse_value(record_type: int, data: bytes | memoryview) -> dict[str, Any]:
    raw = bytes(data)
    if raw[:2] != b"\x00\x00":
        raise RecordFormatError(f"unsupported streams group record value version {raw[:2].hex()}")
    try:
        body, _ = decode_interpreted(_value_struct(record_type), raw[2:])
    except MalformedFrame as exc:
        raise RecordFormatError(str(exc)) from exc
    return body


def task_ids(tasks: Tasks) -> list[dict[str, Any]]:
    return [{"subtopology_id": subtopology, "partitions": sorted(partitions)} for subtopology, partitions in sorted(tasks.items()) if partitions]


def tasks_of(entries: list[dict[str, Any]] | None) -> Tasks:
    result: dict[str, frozenset[int]] = {}
    for entry in entries or ():
        partitions = frozenset(entry["partitions"])
        if partitions:
            result[entry["subtopology_id"]] = result.get(entry["subtopology_id"], frozenset()) | partitions
    return result


def topology_json(body: dict[str, Any]) -> str:
    """A canonical text of a topology, to compare the one a member sends with the group's."""
    return json.dumps(body, sort_keys=True, default=str)
