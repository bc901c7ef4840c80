"""OffsetDelete on a streams group (KIP-1071) over a real socket: while the group has members,
the offsets of its topology's source and repartition source topics stay
(GROUP_SUBSCRIBED_TO_TOPIC per partition) and those of any other topic go; once it is empty,
all go.

Kafka 4.4's OffsetMetadataManager.deleteOffsets asks StreamsGroup.isSubscribedToTopic: false
when the group is empty (or dead), else whether the topology's sourceTopicMap (source and
repartition source topics) holds the name; StreamsGroup.validateOffsetDelete refuses no state.
`kafka-streams-groups --delete-offsets` on a running application prints the error per
partition, as against Kafka.

Expiration keeps the same offsets (OffsetMetadataManager.cleanupExpiredOffsets skips a topic
the group isSubscribedToTopic): while the group has members, the offsets of its other topics
still expire, from their commit (StreamsGroup.offsetExpirationCondition). On the reference
Kafka 4.4 with a one-minute retention, a member's committed offset of a topic outside the
topology went after 61 s while the member kept heartbeating, its source topic's stayed."""

from __future__ import annotations

import time
from typing import Any

from compat.differential import _Connection
from compat.harness import wait_for
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

GROUP = "sg-offset-delete"
SOURCE, REPARTITION, OTHER = "sgod-source", f"{GROUP}-rep-repartition", "sgod-other"
TOPOLOGY = {"epoch": 0, "subtopologies": [
    {"subtopology_id": "0", "source_topics": [SOURCE], "source_topic_regex": [], "state_changelog_topics": [],
     "repartition_sink_topics": [REPARTITION], "repartition_source_topics": [], "copartition_groups": []},
    {"subtopology_id": "1", "source_topics": [], "source_topic_regex": [], "state_changelog_topics": [], "repartition_sink_topics": [],
     "repartition_source_topics": [{"name": REPARTITION, "partitions": 1, "replication_factor": 0, "topic_configs": []}],
     "copartition_groups": []}]}


def _heartbeat(connection: _Connection, epoch: int) -> dict[str, Any]:
    joining = epoch == 0
    answer: dict[str, Any] = connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
        "group_id": GROUP, "member_id": "m1", "member_epoch": epoch, "endpoint_information_epoch": 0, "instance_id": None,
        "rack_id": None, "rebalance_timeout_ms": 30_000 if joining else -1, "topology": TOPOLOGY if joining else None,
        "active_tasks": [] if joining else None, "standby_tasks": [] if joining else None, "warmup_tasks": [] if joining else None,
        "process_id": "p1", "user_endpoint": None, "client_tags": [] if joining else None, "task_offsets": None,
        "task_end_offsets": None, "shutdown_application": False})
    assert answer["error_code"] == ErrorCode.NONE, answer
    return answer


def _commit(connection: _Connection, epoch: int) -> dict[str, int]:
    answer = connection.call(ApiKey.OFFSET_COMMIT, 9, {
        "group_id": GROUP, "generation_id_or_member_epoch": epoch, "member_id": "m1", "group_instance_id": None, "retention_time_ms": -1,
        "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 1, "committed_leader_epoch": -1,
                                                   "committed_metadata": ""}]} for topic in (SOURCE, REPARTITION, OTHER)]})
    return {t["name"]: t["partitions"][0]["error_code"] for t in answer["topics"]}


def _delete(connection: _Connection, *topics: str) -> dict[str, int]:
    answer = connection.call(ApiKey.OFFSET_DELETE, 0, {"group_id": GROUP, "topics": [
        {"name": topic, "partitions": [{"partition_index": 0}]} for topic in topics]})
    assert answer["error_code"] == ErrorCode.NONE, answer
    return {t["name"]: t["partitions"][0]["error_code"] for t in answer["topics"]}


def _committed(connection: _Connection) -> list[str]:
    answer = connection.call(ApiKey.OFFSET_FETCH, 8, {"groups": [{"group_id": GROUP, "topics": None}], "require_stable": False})
    return sorted(t["name"] for t in answer["groups"][0]["topics"])


def offset_deletes(bootstrap: str) -> list[Any]:
    """What OffsetDelete answers of a streams group with a member, then once it has left.
    The repartition topic may appear only after a few heartbeats (Kafka creates it through its
    controller), so the member heartbeats until all three commits are taken."""
    connection = _Connection(bootstrap)
    try:
        for topic in (SOURCE, OTHER):
            created = connection.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": topic, "num_partitions": 1, "replication_factor": 1,
                                                                          "assignments": [], "configs": []}], "timeout_ms": 10_000, "validate_only": False})
            assert created["topics"][0]["error_code"] == ErrorCode.NONE, created
        epoch = _heartbeat(connection, 0)["member_epoch"]
        deadline = time.monotonic() + 20
        while set(_commit(connection, epoch).values()) != {ErrorCode.NONE}:
            assert time.monotonic() < deadline, "commits not taken"
            time.sleep(0.5)
            epoch = _heartbeat(connection, epoch)["member_epoch"]
        with_member = _delete(connection, SOURCE, REPARTITION, OTHER)
        kept = _committed(connection)
        _heartbeat(connection, -1)
        return [with_member, kept, _delete(connection, SOURCE, REPARTITION), _committed(connection)]
    finally:
        connection.close()


def test_a_streams_group_keeps_the_offsets_of_its_source_topics_while_it_has_members() -> None:
    with running_broker(data_dir=None, group_streams_initial_rebalance_delay_ms=0) as broker:
        subscribed = ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
        assert offset_deletes(broker.bootstrap_servers) == [
            {SOURCE: subscribed, REPARTITION: subscribed, OTHER: ErrorCode.NONE},
            [REPARTITION, SOURCE],
            {SOURCE: ErrorCode.NONE, REPARTITION: ErrorCode.NONE},
            [],
        ]


def test_offsets_of_other_topics_expire_while_the_streams_group_has_members() -> None:
    with running_broker(data_dir=None, group_streams_initial_rebalance_delay_ms=0, offsets_retention_check_interval_ms=200) as broker:
        broker.create_topic(SOURCE, 1)
        broker.create_topic(OTHER, 1)
        connection = _Connection(broker.bootstrap_servers)
        try:
            _heartbeat(connection, 0)
            _heartbeat(connection, -1)  # the member leaves: the group is empty
            # A simple commit (empty groups only): OTHER's offset lives 300 ms, SOURCE's the default retention.
            for topic, retention_ms in ((SOURCE, -1), (OTHER, 300)):
                committed = connection.call(ApiKey.OFFSET_COMMIT, 2, {
                    "group_id": GROUP, "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": retention_ms,
                    "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 5, "committed_metadata": ""}]}]})
                assert committed["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE, committed
            epoch = _heartbeat(connection, 0)["member_epoch"]

            def committed_topics() -> list[str]:
                nonlocal epoch
                epoch = _heartbeat(connection, epoch)["member_epoch"]  # the member stays in
                return _committed(connection)

            assert wait_for(lambda: committed_topics() == [SOURCE], timeout=10), committed_topics()
            time.sleep(0.5)  # more cleanups: the source topic's offset stays
            assert committed_topics() == [SOURCE]
        finally:
            connection.close()
