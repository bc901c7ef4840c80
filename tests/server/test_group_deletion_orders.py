"""The orders Kafka 4.4 answers in around group deletions, each expected order the reference
Kafka 4.4's answer to the same requests:

- DeleteGroups: by `__consumer_offsets` partition in the order of GroupCoordinatorService's
  HashMap of them, then, within a partition, in the order of a HashSet of its group ids.
- ListGroups after deletions: a shard's table of groups keeps the size it grew to, and a
  restart's replay of the deleted groups' records grows it again, so the survivors are listed
  by their slots in the bigger table."""

from __future__ import annotations

from pathlib import Path

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def _create_topic(connection: _Connection) -> None:
    topic = {"name": "t", "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}
    answer = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [topic], "timeout_ms": 30000, "validate_only": False})
    assert answer["topics"][0]["error_code"] == ErrorCode.NONE


def _commit(connection: _Connection, group_id: str) -> None:
    """Offsets of a simple group, which makes the group."""
    partition = {"partition_index": 0, "committed_offset": 1, "committed_leader_epoch": -1, "committed_metadata": None}
    answer = connection.call(ApiKey.OFFSET_COMMIT, 8, {
        "group_id": group_id, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None, "retention_time_ms": -1,
        "topics": [{"name": "t", "partitions": [partition]}],
    })
    assert answer["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE


def _delete(connection: _Connection, group_ids: list[str]) -> list[tuple[str, int]]:
    answer = connection.call(ApiKey.DELETE_GROUPS, 2, {"groups_names": group_ids})
    return [(result["group_id"], result["error_code"]) for result in answer["results"]]


def _listed(connection: _Connection) -> list[str]:
    answer = connection.call(ApiKey.LIST_GROUPS, 5, {"states_filter": [], "types_filter": []})
    return [group["group_id"] for group in answer["groups"]]


def test_delete_groups_answers_in_kafkas_partition_and_hash_set_order() -> None:
    with running_broker(data_dir=None, offsets_topic_num_partitions=1) as broker:
        connection = _Connection(broker.bootstrap_servers)
        _create_topic(connection)
        for index in range(4):
            _commit(connection, f"lg-{index}")
        assert _delete(connection, ["lg-0", "lg-1", "zz", "lg-2", "lg-3"]) == [
            ("zz", ErrorCode.GROUP_ID_NOT_FOUND), ("lg-2", 0), ("lg-3", 0), ("lg-0", 0), ("lg-1", 0)]
        connection.close()
    with running_broker(data_dir=None, offsets_topic_num_partitions=50) as broker:
        connection = _Connection(broker.bootstrap_servers)
        _create_topic(connection)
        names = [f"g{index}" for index in range(14)]
        for name in names:
            _commit(connection, name)
        kafka_order = ["g6", "g7", "g4", "g5", "g2", "g3", "g0", "g1", "x1", "x2", "g8", "g9", "g10", "g13", "g11", "g12"]
        expected = [(name, ErrorCode.GROUP_ID_NOT_FOUND if name.startswith("x") else ErrorCode.NONE) for name in kafka_order]
        assert _delete(connection, names + ["x1", "x2"]) == expected
        connection.close()


def test_list_groups_orders_by_the_table_size_deleted_groups_left(tmp_path: Path) -> None:
    with running_broker(data_dir=str(tmp_path), offsets_topic_num_partitions=1) as broker:
        connection = _Connection(broker.bootstrap_servers)
        _create_topic(connection)
        for index in range(7):
            _commit(connection, f"lg-{index}")
        assert [error for _, error in _delete(connection, ["lg-0", "lg-1", "lg-2", "lg-3"])] == [ErrorCode.NONE] * 4
        assert _listed(connection) == ["lg-4", "lg-6", "lg-5"]
        connection.close()
    with running_broker(data_dir=str(tmp_path), offsets_topic_num_partitions=1) as broker:
        connection = _Connection(broker.bootstrap_servers)
        assert _listed(connection) == ["lg-4", "lg-6", "lg-5"]
        connection.close()
