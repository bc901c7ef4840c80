"""ListGroups lists groups in Kafka 4.4's order: by `__consumer_offsets` shard, in the order of
the coordinator runtime's ConcurrentHashMap of shards, then by slot of the shard's
TimelineHashMap of groups, the last inserted first within a slot. The orders expected are what
the reference Kafka 4.4 answered to the same commits (offsets.topic.num.partitions 50 and 1).

Clients show that order: AdminClient keeps listings in a HashMap by group id, so two ids in one
of its buckets come out in the broker's order (kafka-groups --list printed a share group before
a consumer group, where Kafka printed them the other way round)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey

# Nine ids of __consumer_offsets partition 22 of 50 and four of other partitions, in commit order.
COMMITTED = ["grp443", "grp236", "zeta", "grp25", "grp317", "alpha", "grp70", "grp399", "mid", "grp155", "grp362", "grp281", "omega"]
KAFKA_ORDER = {
    50: ["omega", "mid", "grp281", "grp155", "grp399", "grp362", "grp70", "grp236", "grp25", "grp443", "grp317", "alpha", "zeta"],
    1: ["zeta", "grp281", "alpha", "grp155", "grp399", "grp362", "grp70", "grp236", "grp25", "grp443", "grp317", "omega", "mid"],
}
# After the first two commits (one table slot: the last inserted first) and after ten.
KAFKA_EARLY = {
    (50, 2): ["grp236", "grp443"],
    (50, 10): ["mid", "grp155", "grp399", "grp70", "grp236", "grp25", "grp443", "grp317", "alpha", "zeta"],
    (1, 10): ["alpha", "zeta", "grp155", "grp399", "grp70", "grp236", "grp25", "grp443", "grp317", "mid"],
}


@pytest.fixture(params=[50, 1], ids=["50-shards", "1-shard"])
def shards(request: pytest.FixtureRequest) -> Iterator[tuple[int, _Connection]]:
    with running_broker(data_dir=None, offsets_topic_num_partitions=request.param) as broker:
        opened = _Connection(broker.bootstrap_servers)
        topic = {"name": "t", "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}
        assert opened.call(ApiKey.CREATE_TOPICS, 7, {"topics": [topic], "timeout_ms": 30000, "validate_only": False})["topics"][0]["error_code"] == 0
        yield request.param, opened
        opened.close()


def _commit(connection: _Connection, group_id: str) -> None:
    partition = {"partition_index": 0, "committed_offset": 1, "committed_leader_epoch": -1, "committed_metadata": None}
    answer = connection.call(ApiKey.OFFSET_COMMIT, 8, {
        "group_id": group_id, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None, "retention_time_ms": -1,
        "topics": [{"name": "t", "partitions": [partition]}],
    })
    assert answer["topics"][0]["partitions"][0]["error_code"] == 0


def _listed(connection: _Connection) -> list[str]:
    answer = connection.call(ApiKey.LIST_GROUPS, 5, {"states_filter": [], "types_filter": []})
    return [group["group_id"] for group in answer["groups"]]


def test_groups_are_listed_in_kafkas_shard_and_table_order(shards: tuple[int, _Connection]) -> None:
    partitions, connection = shards
    seen = {}
    for count, group_id in enumerate(COMMITTED, 1):
        _commit(connection, group_id)
        if (partitions, count) in KAFKA_EARLY:
            seen[count] = _listed(connection)
    assert seen == {count: order for (p, count), order in KAFKA_EARLY.items() if p == partitions}
    assert _listed(connection) == KAFKA_ORDER[partitions]
