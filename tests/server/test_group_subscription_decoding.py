"""Group subscriptions over real sockets, as Kafka 4.4 answers them (every expected answer
here is the reference Kafka's):

- a classic member's embedded ConsumerProtocol subscription is read as Kafka's generated
  readers read strings (`new String(bytes, UTF_8)`): malformed UTF-8 becomes U+FFFD, never a
  refusal, for a classic group (its subscribed topics, which OffsetDelete checks), a classic
  member joining a KIP-848 group and a classic group converted to one; a classic group reads
  its subscriptions as v0, user data included;
- ConsumerGroupDescribe lists a member's topic names once each, in the order of the HashSet
  replay builds from the sorted member record;
- a KIP-848 member rejoining keeps the regex (or the names) its heartbeat leaves null;
- a JoinGroup sent to a node that does not coordinate its group answers NOT_COORDINATOR with
  a null protocol name from v7 (JoinGroupResponse's constructor), "" before.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from raw_broker import connection  # noqa: F401 (the fixture)
from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

# Malformed UTF-8 after a distinct letter each, and what Kafka 4.4 decoded each to (an
# encoded surrogate, A to D and S, is one replacement in Java and one per byte in Python).
MALFORMED = {
    b"A\xed\xa0\x80": "A\ufffd", b"B\xed\xa0": "B\ufffd", b"C\xed\xa0x": "C\ufffdx", b"D\xed\xbf\xbfz": "D\ufffdz",
    b"E\xe2\x82": "E\ufffd", b"F\xe2\x82x": "F\ufffdx", b"G\xf4\x90\x80\x80": "G" + "\ufffd" * 4,
    b"H\xf0\x80\x80\x80": "H" + "\ufffd" * 4, b"I\xf5\x80\x80\x80": "I" + "\ufffd" * 4, b"J\xf8\x88\x80\x80\x80": "J" + "\ufffd" * 5,
    b"K\xe0\x80\x80": "K" + "\ufffd" * 3, b"L\xef\xbf\xbf": "L\uffff", b"M\xed\x9f\xbf": "M\ud7ff", b"N\xc2": "N\ufffd",
    b"O\xc2x": "O\ufffdx", b"P\xf0\x9f": "P\ufffd", b"Q\xf0\x9fx\x80": "Q\ufffdx\ufffd", b"R\xe0\xa0": "R\ufffd",
    b"S\xed\xa0\x80\xed\xb0\x80": "S\ufffd\ufffd",
}
# The order Kafka 4.4's ConsumerGroupDescribe listed them in.
MALFORMED_DESCRIBED = ["G", "C", "F", "J", "I", "O", "R", "P", "N", "K", "L", "M", "S", "Q", "E", "B", "A", "H", "D"]


def _subscription(topics: list[bytes]) -> bytes:
    """ConsumerProtocolSubscription v0 without user data."""
    out = struct.pack(">hi", 0, len(topics))
    for topic in topics:
        out += struct.pack(">h", len(topic)) + topic
    return out + struct.pack(">i", -1)


def _create(connection: _Connection, *topics: str) -> None:
    answer = connection.call(ApiKey.CREATE_TOPICS, 5, {"topics": [
        {"name": topic, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []} for topic in topics],
        "timeout_ms": 10_000, "validate_only": False})
    assert {topic["error_code"] for topic in answer["topics"]} == {ErrorCode.NONE}


def _heartbeat(connection: _Connection, group_id: str, member_id: str, epoch: int, names: list[str] | None = None,
               regex: str | None = None) -> dict[str, Any]:
    answer = connection.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
        "group_id": group_id, "member_id": member_id, "member_epoch": epoch, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": 30_000, "subscribed_topic_names": names, "subscribed_topic_regex": regex, "server_assignor": None,
        "topic_partitions": [] if epoch == 0 else None})
    assert answer["error_code"] == ErrorCode.NONE, answer
    return answer


def _described(connection: _Connection, group_id: str) -> dict[str, tuple[list[str], str]]:
    """Each member's subscribed topic names and regex, as ConsumerGroupDescribe lists them."""
    (group,) = connection.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, {"group_ids": [group_id], "include_authorized_operations": False})["groups"]
    return {member["member_id"]: (member["subscribed_topic_names"], member["subscribed_topic_regex"]) for member in group["members"]}


def _offset_delete_answers(connection: _Connection, group_id: str, metadata: bytes) -> dict[str, int]:
    """OffsetDelete's answer for "t" and "u" in a classic group whose one member subscribes
    with `metadata`, once the member committed offsets of both."""
    join = {"group_id": group_id, "session_timeout_ms": 45_000, "rebalance_timeout_ms": 3_000, "member_id": "",
            "group_instance_id": None, "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": metadata}]}
    joined = connection.call(ApiKey.JOIN_GROUP, 5, join)
    assert joined["error_code"] == ErrorCode.MEMBER_ID_REQUIRED
    joined = connection.call(ApiKey.JOIN_GROUP, 5, {**join, "member_id": joined["member_id"]})
    assert joined["error_code"] == ErrorCode.NONE
    member_id, generation = joined["member_id"], joined["generation_id"]
    synced = connection.call(ApiKey.SYNC_GROUP, 3, {"group_id": group_id, "generation_id": generation, "member_id": member_id,
                                                    "group_instance_id": None, "assignments": []})
    assert synced["error_code"] == ErrorCode.NONE
    committed = connection.call(ApiKey.OFFSET_COMMIT, 8, {
        "group_id": group_id, "generation_id_or_member_epoch": generation, "member_id": member_id, "group_instance_id": None,
        "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 1, "committed_leader_epoch": -1,
                                                   "committed_metadata": ""}]} for topic in ("t", "u")]})
    assert {p["error_code"] for t in committed["topics"] for p in t["partitions"]} == {ErrorCode.NONE}
    deleted = connection.call(ApiKey.OFFSET_DELETE, 0, {"group_id": group_id, "topics": [
        {"name": topic, "partitions": [{"partition_index": 0}]} for topic in ("t", "u")]})
    assert deleted["error_code"] == ErrorCode.NONE
    return {t["name"]: t["partitions"][0]["error_code"] for t in deleted["topics"]}


@pytest.fixture
def undelayed() -> Iterator[_Connection]:
    """A connection to a broker whose classic groups form without the initial rebalance delay."""
    with running_broker(data_dir=None, group_initial_rebalance_delay_ms=0) as broker:
        opened = _Connection(broker.bootstrap_servers)
        yield opened
        opened.close()


SUBSCRIBED_TO_T = {"t": ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, "u": ErrorCode.NONE}
SUBSCRIBED_TO_ALL = {"t": ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, "u": ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC}


def test_a_classic_subscription_with_malformed_utf8_still_names_its_topics(undelayed: _Connection) -> None:
    """ClassicGroup.computeSubscribedTopics reads the names with replacement characters, so
    the group is subscribed to "t" and not to "u", whose offsets OffsetDelete may delete."""
    _create(undelayed, "t", "u")
    assert _offset_delete_answers(undelayed, "classic", _subscription([b"t", *MALFORMED])) == SUBSCRIBED_TO_T


def test_a_classic_subscription_is_read_as_version_0_user_data_included(undelayed: _Connection) -> None:
    """computeSubscribedTopics reads every subscription as v0 (the version it reads first is
    dropped): later versions' fields are never looked at, but v0's UserData must be whole, else
    the topics are unknown and the group counts as subscribed to every topic."""
    _create(undelayed, "t", "u")
    topic_t = struct.pack(">ih", 1, 1) + b"t"
    assert _offset_delete_answers(undelayed, "negative", struct.pack(">h", -1) + topic_t + struct.pack(">i", -1)) == SUBSCRIBED_TO_T
    assert _offset_delete_answers(undelayed, "short-v1", struct.pack(">h", 1) + topic_t + struct.pack(">i", -1)) == SUBSCRIBED_TO_T
    assert _offset_delete_answers(undelayed, "no-user-data", struct.pack(">h", 0) + topic_t) == SUBSCRIBED_TO_ALL
    assert _offset_delete_answers(undelayed, "long-user-data", struct.pack(">h", 0) + topic_t + struct.pack(">i", 50) + b"xx") == SUBSCRIBED_TO_ALL


def test_a_classic_member_with_malformed_utf8_joins_a_consumer_group(connection: _Connection) -> None:
    """classicGroupJoinToConsumerGroup: the subscription parses, its names carry U+FFFD."""
    _create(connection, "t")
    _heartbeat(connection, "modern", str(uuid.uuid4()), 0, names=["t"])
    joined = connection.call(ApiKey.JOIN_GROUP, 8, {
        "group_id": "modern", "session_timeout_ms": 45_000, "rebalance_timeout_ms": 3_000, "member_id": "classic-member",
        "group_instance_id": None, "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": _subscription(list(MALFORMED))}],
        "reason": None})
    assert (joined["error_code"], joined["protocol_name"]) == (ErrorCode.NONE, "range")
    by_letter = {decoded[0]: decoded for decoded in MALFORMED.values()}
    assert _described(connection, "modern")["classic-member"] == ([by_letter[letter] for letter in MALFORMED_DESCRIBED], "")


def test_a_classic_group_with_malformed_utf8_upgrades(undelayed: _Connection) -> None:
    """ConsumerGroup.fromClassicGroup reads the member's subscription the same way: a consumer
    protocol member joining converts the group, the classic member's names decoded."""
    _create(undelayed, "t")
    join = {"group_id": "upgraded", "session_timeout_ms": 45_000, "rebalance_timeout_ms": 3_000, "member_id": "",
            "group_instance_id": None, "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": _subscription([b"t", b"b\xed\xa0\x80d"])}]}
    joined = undelayed.call(ApiKey.JOIN_GROUP, 3, join)
    assert joined["error_code"] == ErrorCode.NONE
    assignment = struct.pack(">hih", 0, 1, 1) + b"t" + struct.pack(">iii", 1, 0, -1)
    synced = undelayed.call(ApiKey.SYNC_GROUP, 3, {"group_id": "upgraded", "generation_id": joined["generation_id"],
                                                    "member_id": joined["member_id"], "group_instance_id": None,
                                                    "assignments": [{"member_id": joined["member_id"], "assignment": assignment}]})
    assert synced["error_code"] == ErrorCode.NONE
    _heartbeat(undelayed, "upgraded", str(uuid.uuid4()), 0, names=["t"])
    assert _described(undelayed, "upgraded")[joined["member_id"]] == (["t", "b\ufffdd"], "")


def test_described_topic_names_are_a_java_hash_set_of_the_sorted_names(connection: _Connection) -> None:
    member_id = str(uuid.uuid4())
    _heartbeat(connection, "modern", member_id, 0, names=["zz", "b", "a", "b", "topic-long-name", "c", "A", "t"])
    assert _described(connection, "modern")[member_id] == (["zz", "A", "a", "topic-long-name", "b", "c", "t"], "")


def test_a_rejoining_member_keeps_what_its_heartbeat_leaves_null(connection: _Connection) -> None:
    """ConsumerGroupMember.Builder.maybeUpdateSubscribedTopicRegex / ...TopicNames keep the
    member's value for a null field, at epoch 0 as at any other."""
    _create(connection, "t", "u")
    member_id = str(uuid.uuid4())
    _heartbeat(connection, "modern", member_id, 0, regex="t.*")
    assert _described(connection, "modern")[member_id] == ([], "t.*")
    _heartbeat(connection, "modern", member_id, 0, names=["u"])
    assert _described(connection, "modern")[member_id] == (["u"], "t.*")
    epoch = _heartbeat(connection, "modern", member_id, 0, regex="x.*")["member_epoch"]
    assert _described(connection, "modern")[member_id] == (["u"], "x.*")
    _heartbeat(connection, "modern", member_id, epoch, names=["t"])
    assert _described(connection, "modern")[member_id] == (["t"], "x.*")


def test_join_group_to_another_coordinator_names_no_protocol() -> None:
    with running_broker(nodes=3, data_dir=None) as cluster:
        first = _Connection(cluster.bootstrap_servers.split(",")[0])
        (found,) = first.call(ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["joined"]})["coordinators"]
        assert found["error_code"] == ErrorCode.NONE
        first.close()
        others = [address for address in cluster.bootstrap_servers.split(",") if not address.endswith(f":{found['port']}")]
        assert len(others) == 2
        connection = _Connection(others[0])
        join = {"group_id": "joined", "session_timeout_ms": 45_000, "rebalance_timeout_ms": 3_000, "member_id": "",
                "group_instance_id": None, "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b""}], "reason": None}
        answers = {version: connection.call(ApiKey.JOIN_GROUP, version, join) for version in (6, 7, 9)}
        connection.close()
        assert {version: (a["error_code"], a["protocol_name"]) for version, a in answers.items()} == {
            6: (ErrorCode.NOT_COORDINATOR, ""), 7: (ErrorCode.NOT_COORDINATOR, None), 9: (ErrorCode.NOT_COORDINATOR, None)}
