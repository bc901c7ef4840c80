"""The order of a ShareFetch answer's entries, as Kafka 4.4's KafkaApis builds it: the fetch's
partitions (every partition of the session, read or refused) in the order of its answer map,
a scala Map keyed by TopicIdPartition (so by their hashes), each under its topic where that
first comes; then each partition that was only acknowledged, at the end of its topic's, in the
order of the scala mutable map the acknowledgements are gathered in (by partition index).

Every expected answer was asked of Kafka 4.4 with the same requests. The unknown topic ids are
fixed, so their partitions' hashes are too; a real topic's id is random, so its partitions'
place among them is not pinned.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.records import Record, build_batch
from share_member import ShareMember

TOPIC = "answer-order"
GROUP = "answer-order-group"
UNKNOWN_A = bytes.fromhex("6f2a3c0e9b8d4e7fa1c2d3e4f5a6b7c8")
UNKNOWN_B = bytes.fromhex("0d9e8f7a6b5c4d3e8f1a2b3c4d5e6f70")
_ACCEPT = 1


@pytest.fixture()
def member() -> Iterator[tuple[ShareMember, bytes]]:
    """A member assigned the 4 partitions of TOPIC (share.auto.offset.reset latest)."""
    broker: ThreadedBroker
    with running_broker(data_dir=None) as broker:
        broker.create_topic(TOPIC, partitions=4)
        joined = ShareMember(broker)
        topic_id = bytes(joined.join_until_assigned(GROUP, [TOPIC])[0]["topic_id"])
        yield joined, topic_id
        joined.close()


def _fetch(member: ShareMember, epoch: int, fetched: list[tuple[bytes, int]], max_wait_ms: int = 0,
           acknowledged: tuple[tuple[bytes, int], ...] = ()) -> list[tuple[bytes, int, int, list[tuple[int, int]]]]:
    """One ShareFetch v1 naming `fetched` in that order, acknowledging offsets 0-1 (ACCEPT) of
    those `acknowledged`: the answer's (topic id, partition, error, acquired ranges), in order."""
    topics: dict[bytes, list[dict[str, Any]]] = {}
    for topic_id, index in fetched:
        batches = [{"first_offset": 0, "last_offset": 1, "acknowledge_types": [_ACCEPT]}] if (topic_id, index) in acknowledged else []
        topics.setdefault(topic_id, []).append({"partition_index": index, "acknowledgement_batches": batches})
    answer: dict[str, Any] = member.call(ApiKey.SHARE_FETCH, 1, {
        "group_id": GROUP, "member_id": member.member_id, "share_session_epoch": epoch, "max_wait_ms": max_wait_ms, "min_bytes": 1,
        "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500,
        "topics": [{"topic_id": topic_id, "partitions": partitions} for topic_id, partitions in topics.items()],
        "forgotten_topics_data": []})
    assert answer["error_code"] == 0
    return [(bytes(topic["topic_id"]), partition["partition_index"], partition["error_code"],
             [(r["first_offset"], r["last_offset"]) for r in partition["acquired_records"]])
            for topic in answer["responses"] for partition in topic["partitions"]]


def _produce(member: ShareMember, index: int, count: int) -> None:
    """`count` records in one batch on partition `index` of TOPIC."""
    produced = member.call(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
        {"name": TOPIC, "partition_data": [{"index": index, "records": build_batch([Record(i, 0, None, b"v") for i in range(count)])}]}]})
    assert produced["responses"][0]["partition_responses"][0]["error_code"] == 0


def test_partitions_only_acknowledged_come_after_those_with_records_by_index(member: tuple[ShareMember, bytes]) -> None:
    joined, topic_id = member
    assert len(_fetch(joined, 0, [(topic_id, index) for index in range(4)], max_wait_ms=200)) == 4
    for index in (1, 2, 3):
        _produce(joined, index, 2)
    assert sorted(_fetch(joined, 1, [])) == [(topic_id, index, 0, [(0, 1)]) for index in (1, 2, 3)]
    _produce(joined, 0, 3)
    acknowledged = ((topic_id, 3), (topic_id, 1), (topic_id, 2))
    assert _fetch(joined, 2, list(acknowledged), acknowledged=acknowledged) == [
        (topic_id, 0, 0, [(0, 2)]), (topic_id, 1, 0, []), (topic_id, 2, 0, []), (topic_id, 3, 0, [])]


def test_unknown_topics_are_answered_in_the_answer_maps_order(member: tuple[ShareMember, bytes]) -> None:
    joined, topic_id = member

    def refused(answer: list[tuple[bytes, int, int, list[tuple[int, int]]]]) -> list[tuple[str, int, int]]:
        names = {UNKNOWN_A: "A", UNKNOWN_B: "B"}
        return [(names[topic], index, error) for topic, index, error, _ in answer if topic != topic_id]

    unknown_topic_id = 100
    opened = _fetch(joined, 0, [(topic_id, 0), (UNKNOWN_B, 1), (UNKNOWN_A, 3), (UNKNOWN_A, 0)], max_wait_ms=200)
    assert refused(opened) == [("B", 1, unknown_topic_id), ("A", 0, unknown_topic_id), ("A", 3, unknown_topic_id)]
    assert (topic_id, 0, 0, []) in opened
    assert refused(_fetch(joined, 1, [])) == [("B", 1, unknown_topic_id), ("A", 0, unknown_topic_id), ("A", 3, unknown_topic_id)]


def test_a_closing_fetch_answers_its_acknowledgements_by_topic_then_index_in_map_order(member: tuple[ShareMember, bytes]) -> None:
    """A final fetch (epoch -1) answers only acknowledgements: each topic where the mutable map
    of topic ids puts it, each topic's partitions where the map of indexes puts them."""
    joined, topic_id = member
    unknown_c = bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90")
    assert _fetch(joined, 0, [(topic_id, 0)], max_wait_ms=200) == [(topic_id, 0, 0, [])]
    acknowledged = ((UNKNOWN_B, 1), (UNKNOWN_A, 3), (unknown_c, 5), (UNKNOWN_A, 0), (unknown_c, 2), (UNKNOWN_B, 9))
    closing = _fetch(joined, -1, list(acknowledged), acknowledged=acknowledged)
    names = {UNKNOWN_A: "A", UNKNOWN_B: "B", unknown_c: "C"}
    assert [(names[topic], index) for topic, index, _, _ in closing] == [("C", 2), ("C", 5), ("A", 0), ("A", 3), ("B", 1), ("B", 9)]
