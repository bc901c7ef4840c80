"""OffsetDelete on a KIP-848 consumer group over a real socket: the offsets of a topic one of
its members subscribes to stay (GROUP_SUBSCRIBED_TO_TOPIC per partition), those of any other
topic go, in whatever state the group is.

Kafka 4.4's OffsetMetadataManager.deleteOffsets asks Group.isSubscribedToTopic, which for a
consumer group is ModernGroup's count of members subscribing to the name (by name or resolved
regex); ConsumerGroup.validateOffsetDelete refuses no state. `kafka-consumer-groups
--delete-offsets` prints the error per partition, as against Kafka."""

from __future__ import annotations

from typing import Any

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_features import Client

GROUP = "offset-delete-subscribed"
READ, OTHER = "od-read", "od-other"


def _create(client: Client, topic: str) -> None:
    created = client.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": topic, "num_partitions": 2, "replication_factor": 1,
                                                                "assignments": [], "configs": []}], "timeout_ms": 10_000, "validate_only": False})
    assert created["topics"][0]["error_code"] == ErrorCode.NONE


def _commit(client: Client) -> None:
    """A simple commit (no member) of both topics' offsets, before any member joins."""
    answer = client.call(ApiKey.OFFSET_COMMIT, 8, {
        "group_id": GROUP, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None, "retention_time_ms": -1,
        "topics": [{"name": topic, "partitions": [{"partition_index": p, "committed_offset": 1, "committed_leader_epoch": -1,
                                                   "committed_metadata": ""} for p in (0, 1)]} for topic in (READ, OTHER)]})
    assert {p["error_code"] for t in answer["topics"] for p in t["partitions"]} == {ErrorCode.NONE}


def _heartbeat(client: Client, member_id: str, epoch: int) -> dict[str, Any]:
    joining = epoch == 0
    answer = client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
        "group_id": GROUP, "member_id": member_id, "member_epoch": epoch, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": 30_000 if joining else -1, "subscribed_topic_names": [READ] if joining else None,
        "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": [] if joining else None})
    assert answer["error_code"] == ErrorCode.NONE, answer
    return answer


def _delete(client: Client, *topics: str) -> dict[str, dict[int, int]]:
    answer = client.call(ApiKey.OFFSET_DELETE, 0, {"group_id": GROUP, "topics": [
        {"name": topic, "partitions": [{"partition_index": p} for p in (0, 1)]} for topic in topics]})
    assert answer["error_code"] == ErrorCode.NONE, answer
    return {t["name"]: {p["partition_index"]: p["error_code"] for p in t["partitions"]} for t in answer["topics"]}


def _committed(client: Client) -> dict[str, list[int]]:
    answer = client.call(ApiKey.OFFSET_FETCH, 8, {"groups": [{"group_id": GROUP, "topics": None}], "require_stable": False})
    return {t["name"]: [p["committed_offset"] for p in t["partitions"]] for t in answer["groups"][0]["topics"]}


def test_a_consumer_group_keeps_the_offsets_of_a_topic_its_member_subscribes_to() -> None:
    with running_broker(data_dir=None) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            _create(client, READ)
            _create(client, OTHER)
            _commit(client)
            member = _heartbeat(client, "m1", 0)
            assert member["member_epoch"] > 0
            subscribed = ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
            assert _delete(client, READ, OTHER) == {READ: {0: subscribed, 1: subscribed}, OTHER: {0: ErrorCode.NONE, 1: ErrorCode.NONE}}
            assert _committed(client) == {READ: [1, 1]}
            # Once the member has left, no member subscribes to it: its offsets go too.
            _heartbeat(client, "m1", -1)
            assert _delete(client, READ) == {READ: {0: ErrorCode.NONE, 1: ErrorCode.NONE}}
            assert _committed(client) == {}
        finally:
            client.close()
