"""Which partitions of a share session a ShareFetch hands records out from when its
max_records runs out, as Kafka 4.4 decides (`ottla.server.share.fetch_order`): each request
after the first rotates the session by its epoch, a partition whose next fetch offset moved
since a fetch last looked at it comes after the others, and the partitions that got records
move to the end of the session in the order of Kafka's answer map (by their hashes).

The served sequences were asked of Kafka 4.4 with the same requests: one member, a session
opened before anything is produced, then 3 records per partition per flush (one batch each)
and fetches of max_records 3, so each fetch takes one batch from one partition.
"""

from __future__ import annotations

from typing import Any

import pytest
from kafka import KafkaProducer  # type: ignore[import-untyped]

from ottla.server.java_hashing import response_map_order, topic_id_partition_hash
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from share_member import ShareMember


def _fetch(member: ShareMember, group: str, topic_id: bytes, epoch: int, partitions: list[int]) -> list[int]:
    """The partitions a ShareFetch of max_records 3 acquired records from."""
    answer: dict[str, Any] = member.call(ApiKey.SHARE_FETCH, 1, {
        "group_id": group, "member_id": member.member_id, "share_session_epoch": epoch, "max_wait_ms": 0, "min_bytes": 1,
        "max_bytes": 1 << 20, "max_records": 3, "batch_size": 500,
        "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": index, "acknowledgement_batches": []} for index in partitions]}]
        if partitions else [],
        "forgotten_topics_data": []})
    assert answer["error_code"] == 0
    return [partition["partition_index"] for topic in answer["responses"] for partition in topic["partitions"] if partition["acquired_records"]]


@pytest.mark.parametrize(("partitions", "rounds", "served"), [
    (3, 4, [1, 0, 2, 0, 1, 2, 1, 0]),
    (4, 5, [1, 3, 0, 2, 3, 2, 1, 0, 2, 0, 3, 1, 0, 1, 2, 3]),
    (5, 4, [1, 3, 1, 0, 2, 3, 0, 3, 4, 1, 0, 4, 0, 2, 3]),
    (2, 5, [1, 0, 1, 0, 1, 0, 1, 0]),
])
def test_fetches_take_the_partitions_in_turn_as_kafka(partitions: int, rounds: int, served: list[int]) -> None:
    topic, group = f"turns{partitions}", f"turns{partitions}-group"
    with running_broker(data_dir=None) as broker:
        broker.create_topic(topic, partitions=partitions)
        member = ShareMember(broker)
        topic_id = bytes(member.join_until_assigned(group, [topic])[0]["topic_id"])
        assert _fetch(member, group, topic_id, 0, list(range(partitions))) == []
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=50, batch_size=1 << 20)
        for _ in range(rounds):
            for index in range(partitions):
                for _ in range(3):
                    producer.send(topic, b"v", partition=index)
            producer.flush()
        producer.close()
        got = [_fetch(member, group, topic_id, epoch, []) for epoch in range(1, len(served) + 1)]
        member.close()
    assert got == [[index] for index in served]


# Kafka 4.4's answers to a ShareFetch opening a session on every partition of a fresh topic
# (nothing produced): (topic, its id, the partitions in the answer's order), the order of the
# answer map a later fetch moves partitions to the session's end in.
_ANSWER_ORDERS = [
    ("o3", "13b867f013874202a9cc3a473d3ff66f", [2, 1, 0]),
    ("o4", "ca62294b0b81462d9c7afcb103f171f7", [0, 1, 2, 3]),
    ("o6", "b9cc57698f30464ba7313155d6bb5bd8", [2, 3, 1, 5, 0, 4]),
    ("o9", "387810b81f204135b419e08c0ed4fd19", [5, 2, 8, 3, 7, 0, 4, 6, 1]),
    ("o13", "ab294c34569849c29c5b56dedf7c9f2a", [5, 4, 1, 9, 0, 3, 11, 6, 12, 2, 10, 8, 7]),
]


@pytest.mark.parametrize(("topic", "topic_id", "order"), _ANSWER_ORDERS)
def test_the_answer_map_orders_partitions_as_kafka(topic: str, topic_id: str, order: list[int]) -> None:
    tid = bytes.fromhex(topic_id)
    assert response_map_order(sorted(order), lambda index: topic_id_partition_hash(tid, topic, index)) == order
