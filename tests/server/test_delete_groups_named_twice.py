"""DeleteGroups naming a group more than once answers it once, as Kafka 4.4 does (its results
come from a map keyed by group id); an empty group id is a group no one made. Raw requests to
a real broker; every answer here is the reference Kafka 4.4's."""

from __future__ import annotations

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def test_a_group_named_twice_is_deleted_and_answered_once() -> None:
    with running_broker(data_dir=None) as broker:
        connection = _Connection(broker.bootstrap_servers)
        created = connection.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": False, "topics": [
            {"name": "t", "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}]})
        assert created["topics"][0]["error_code"] == ErrorCode.NONE
        committed = connection.call(ApiKey.OFFSET_COMMIT, 2, {
            "group_id": "g", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": -1,
            "topics": [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 0, "committed_metadata": ""}]}]})
        assert committed["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE

        def deleted(names: list[str], version: int) -> list[tuple[str, int]]:
            answer = connection.call(ApiKey.DELETE_GROUPS, version, {"groups_names": names})
            return sorted((r["group_id"], r["error_code"]) for r in answer["results"])

        assert deleted(["g", "x", "g", "x", ""], 2) == [("", ErrorCode.GROUP_ID_NOT_FOUND), ("g", ErrorCode.NONE), ("x", ErrorCode.GROUP_ID_NOT_FOUND)]
        assert deleted(["g", "g"], 0) == [("g", ErrorCode.GROUP_ID_NOT_FOUND)]
        connection.close()
