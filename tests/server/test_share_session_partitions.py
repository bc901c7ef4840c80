"""Which partitions a ShareFetch lists without records, as Kafka 4.4's share sessions decide
(SharePartitionManager.newContext, CachedSharePartition.requiresUpdateInResponse): a request
opening a session lists every partition it fetches and does not read forgotten_topics_data;
a later request lists once each partition it adds to the session (unless it also forgets it),
and nothing it held before. Asked of Kafka 4.4 with the same requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from share_member import ShareMember

TOPIC = "listed"
GROUP = "listed-group"


@pytest.fixture()
def member() -> Iterator[tuple[ShareMember, bytes]]:
    broker: ThreadedBroker
    with running_broker(data_dir=None) as broker:
        broker.create_topic(TOPIC, partitions=4)
        joined = ShareMember(broker)
        topic_id = bytes(joined.join_until_assigned(GROUP, [TOPIC])[0]["topic_id"])
        yield joined, topic_id
        joined.close()


def _listed(member: ShareMember, topic_id: bytes, epoch: int, fetched: list[int], forgotten: list[int]) -> list[int]:
    """The partitions a ShareFetch's answer names (nothing was produced: none has records), in
    order of index: Kafka's order is its response map's (a hash map's), not the request's."""
    answer: dict[str, Any] = member.call(ApiKey.SHARE_FETCH, 1, {
        "group_id": GROUP, "member_id": member.member_id, "share_session_epoch": epoch, "max_wait_ms": 50, "min_bytes": 1,
        "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500,
        "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": index, "acknowledgement_batches": []} for index in fetched]}]
        if fetched else [],
        "forgotten_topics_data": [{"topic_id": topic_id, "partitions": forgotten}] if forgotten else []})
    assert answer["error_code"] == 0
    return sorted(partition["partition_index"] for topic in answer["responses"] for partition in topic["partitions"])


def test_opening_a_session_ignores_its_forgotten_partitions(member: tuple[ShareMember, bytes]) -> None:
    joined, topic_id = member
    assert _listed(joined, topic_id, 0, [2], [2]) == [2]
    # The forgotten partition stayed in the session: forgetting it now leaves nothing to list.
    assert _listed(joined, topic_id, 1, [], [2]) == []
    assert _listed(joined, topic_id, 0, [0, 3], [0]) == [0, 3]


def test_a_later_fetch_lists_each_partition_it_adds_once(member: tuple[ShareMember, bytes]) -> None:
    joined, topic_id = member
    assert _listed(joined, topic_id, 0, [0], []) == [0]
    assert _listed(joined, topic_id, 1, [1], []) == [1]
    assert _listed(joined, topic_id, 2, [], []) == []
    assert _listed(joined, topic_id, 3, [1, 2], []) == [2]
    assert _listed(joined, topic_id, 4, [0, 1, 2], []) == []
    # Added and forgotten by one request: never in the session, never listed.
    assert _listed(joined, topic_id, 5, [3], [3]) == []
    assert _listed(joined, topic_id, 6, [], []) == []
