"""Fetch requests of unusual shape answered as Kafka 4.4 answered the same raw requests on one
node: a partition named twice, an isolation_level other than 0 and 1, a replica id from a
client, a negative partition_max_bytes. Topic "t" has 2 partitions of 5 one-record batches
(70 bytes each); "u" has one empty partition. A row is (partition, error, high watermark, last
stable offset, log start, aborted transactions, bytes of records)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ottla.server.admin.client import Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

BATCH = 70


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[Connection, dict[str, bytes]]]:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("t", 2)
        broker.create_topic("u", 1)
        connection = _connect(broker)
        for index in (0, 1):
            for i in range(5):
                batch = build_batch([Record(0, int(time.time() * 1000), None, b"v%d" % i, ())])
                answer = connection.request(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
                    {"name": "t", "partition_data": [{"index": index, "records": batch}]}]})
                assert answer["responses"][0]["partition_responses"][0]["error_code"] == ErrorCode.NONE
        described = connection.request(ApiKey.METADATA, 12, {"topics": [{"name": name, "topic_id": bytes(16)} for name in ("t", "u")],
                                                             "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})
        yield connection, {topic["name"]: bytes(topic["topic_id"]) for topic in described["topics"]}
        connection.close()


def _connect(broker: ThreadedBroker) -> Connection:
    host, port = broker.bootstrap_servers.rsplit(":", 1)
    return Connection(host, int(port), 30.0, "unusual-fetch-test")


def _partition(index: int, offset: int, max_bytes: int = 1 << 20, current_leader_epoch: int = -1) -> dict[str, Any]:
    return {"partition": index, "current_leader_epoch": current_leader_epoch, "fetch_offset": offset, "last_fetched_epoch": -1,
            "log_start_offset": -1, "partition_max_bytes": max_bytes}


def _fetch(setup: tuple[Connection, dict[str, bytes]], version: int, topics: list[tuple[str, list[dict[str, Any]]]],
           **fields: Any) -> dict[str, Any]:
    connection, ids = setup
    body = {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
            "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
            "topics": [{"topic": name, "topic_id": ids.get(name, bytes(16)), "partitions": partitions} for name, partitions in topics]}
    body.update(fields)
    return connection.request(ApiKey.FETCH, version, body)


def _rows(answer: dict[str, Any], ids: dict[str, bytes]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    names = {topic_id: name for name, topic_id in ids.items()}
    return [(topic.get("topic") or names[bytes(topic["topic_id"])], [
        (p["partition_index"], p["error_code"], p["high_watermark"], p["last_stable_offset"], p.get("log_start_offset", "absent"),
         p["aborted_transactions"], len(p["records"] or b"")) for p in topic["partitions"]]) for topic in answer["responses"]]


def _at(version: int, rows: list[tuple[str, list[tuple[Any, ...]]]]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """`rows` as `version` carries them: log_start_offset is v5+."""
    if version >= 5:
        return rows
    return [(name, [(*row[:4], "absent", *row[5:]) for row in partitions]) for name, partitions in rows]


def test_a_partition_named_twice_is_read_once_where_first_named_with_what_it_was_last_asked(setup: Any) -> None:
    ids = setup[1]
    for version in (4, 12, 13, 17):
        # FetchRequest.fetchData's LinkedHashMap: first place, last value (offset 3: two batches).
        answer = _fetch(setup, version, [("t", [_partition(0, 0), _partition(0, 3)])])
        assert _rows(answer, ids) == _at(version, [("t", [(0, 0, 5, 5, 0, None, 2 * BATCH)])]), version
        answer = _fetch(setup, version, [("t", [_partition(0, 0)]), ("u", [_partition(0, 0)]), ("t", [_partition(0, 3), _partition(1, 3)])])
        assert _rows(answer, ids) == _at(version, [("t", [(0, 0, 5, 5, 0, None, 2 * BATCH)]), ("u", [(0, 0, 0, 0, 0, None, 0)]),
                                                   ("t", [(1, 0, 5, 5, 0, None, 2 * BATCH)])]), version
        answer = _fetch(setup, version, [("t", [_partition(0, 0, max_bytes=-1), _partition(0, 4)])])
        assert _rows(answer, ids) == _at(version, [("t", [(0, 0, 5, 5, 0, None, BATCH)])]), version
    for version in (12, 13, 17):
        # A full request opens a session of each partition once; the next request reads it so.
        answer = _fetch(setup, version, [("t", [_partition(0, 0), _partition(0, 3)])], session_epoch=0)
        assert _rows(answer, ids) == _at(version, [("t", [(0, 0, 5, 5, 0, None, 2 * BATCH)])]), version
        assert answer["session_id"] != 0
        again = _fetch(setup, version, [], session_id=answer["session_id"], session_epoch=1)
        assert _rows(again, ids) == [("t", [(0, 0, 5, 5, 0, None, 2 * BATCH)])], version


def test_an_isolation_level_other_than_0_and_1_fails_the_request_once_a_partition_is_to_be_read(setup: Any) -> None:
    ids = setup[1]
    failed = (ErrorCode.UNKNOWN_SERVER_ERROR, -1, -1, -1, [], 0)
    for level in (2, -1):
        for version in (4, 12):
            # FetchRequest.getErrorResponse: every partition as named, unknown ones too.
            answer = _fetch(setup, version, [("zz", [_partition(0, 0)]), ("t", [_partition(0, 0), _partition(0, 1)])], isolation_level=level)
            assert answer.get("error_code", ErrorCode.UNKNOWN_SERVER_ERROR) == ErrorCode.UNKNOWN_SERVER_ERROR
            assert _rows(answer, ids) == _at(version, [("zz", [(0, *failed)]), ("t", [(0, *failed), (0, *failed)])]), (level, version)
            # Nothing to read (KafkaApis answers before FetchIsolation.of): answered as usual.
            answer = _fetch(setup, version, [("zz", [_partition(0, 0)]), ("t", [_partition(9, 0)])], isolation_level=level)
            unknown = (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1, [], 0)
            assert _rows(answer, ids) == _at(version, [("zz", [(0, *unknown)]), ("t", [(9, *unknown)])]), (level, version)
        for version in (13, 17):
            answer = _fetch(setup, version, [("t", [_partition(0, 0)])], isolation_level=level)
            assert (answer["error_code"], answer["session_id"], answer["responses"]) == (ErrorCode.UNKNOWN_SERVER_ERROR, 0, [])
    # A full request opens no session; an incremental one has its epoch advanced all the same.
    answer = _fetch(setup, 12, [("t", [_partition(0, 0)])], session_epoch=0, isolation_level=2)
    assert (answer["error_code"], answer["session_id"]) == (ErrorCode.UNKNOWN_SERVER_ERROR, 0)
    session_id = _fetch(setup, 12, [("t", [_partition(0, 0)])], session_epoch=0)["session_id"]
    answer = _fetch(setup, 12, [], session_id=session_id, session_epoch=1, isolation_level=2)
    assert (answer["error_code"], answer["session_id"], answer["responses"]) == (ErrorCode.UNKNOWN_SERVER_ERROR, session_id, [])
    answer = _fetch(setup, 12, [], session_id=session_id, session_epoch=2)
    assert answer["error_code"] == ErrorCode.NONE
    assert _rows(answer, ids) == _at(12, [("t", [(0, 0, 5, 5, 0, None, 5 * BATCH)])])


def test_a_replica_id_is_no_follower_of_a_single_node(setup: Any) -> None:
    ids = setup[1]
    not_leader = (ErrorCode.NOT_LEADER_FOR_PARTITION, -1, -1, -1, None, 0)
    unknown = (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1, [], 0)
    for version in (4, 12, 17):
        for replica_id in (1, 5):
            replica = {"replica_id": replica_id, "replica_state": {"replica_id": replica_id, "replica_epoch": 5}}
            answer = _fetch(setup, version, [("t", [_partition(0, 0)])], **replica)
            assert _rows(answer, ids) == _at(version, [("t", [(0, *not_leader)])]), (version, replica_id)
            # Checked after the partition is known, before the read (an offset past the end too),
            # and answered at once.
            answer = _fetch(setup, version, [("t", [_partition(0, 9), _partition(9, 0)])], **replica)
            assert _rows(answer, ids) == _at(version, [("t", [(0, *not_leader), (9, *unknown)])]), (version, replica_id)
            answer = _fetch(setup, version, [("t", [_partition(0, 5)])], min_bytes=1, max_wait_ms=60_000, **replica)
            assert _rows(answer, ids) == _at(version, [("t", [(0, *not_leader)])]), (version, replica_id)
        # The leader epoch is checked first (Partition.fetchRecords).
        answer = _fetch(setup, version, [("t", [_partition(0, 0, current_leader_epoch=7)])], replica_id=5,
                        replica_state={"replica_id": 5, "replica_epoch": -1})
        expected = not_leader if version < 9 else (ErrorCode.UNKNOWN_LEADER_EPOCH, -1, -1, -1, None, 0)
        assert _rows(answer, ids) == _at(version, [("t", [(0, *expected)])]), version


def test_a_negative_partition_max_bytes_fails_a_read_below_where_it_stops(setup: Any) -> None:
    ids = setup[1]
    failed = (ErrorCode.UNKNOWN_SERVER_ERROR, -1, -1, -1, None, 0)
    for version in (4, 12, 17):
        answer = _fetch(setup, version, [("t", [_partition(0, 0, max_bytes=-1)])])
        assert _rows(answer, ids) == _at(version, [("t", [(0, *failed)])]), version
        answer = _fetch(setup, version, [("t", [_partition(0, 0, max_bytes=-1)])], isolation_level=1)
        assert _rows(answer, ids) == _at(version, [("t", [(0, *failed)])]), version
        answer = _fetch(setup, version, [("t", [_partition(1, 2), _partition(0, 0, max_bytes=-5)])])
        assert _rows(answer, ids) == _at(version, [("t", [(1, 0, 5, 5, 0, None, 3 * BATCH), (0, *failed)])]), version
        # At the high watermark LocalLog.read returns before any segment read; past it, out of range.
        answer = _fetch(setup, version, [("t", [_partition(0, 5, max_bytes=-1), _partition(1, 9, max_bytes=-1)])])
        assert _rows(answer, ids) == _at(version, [("t", [(0, 0, 5, 5, 0, None, 0),
                                                         (1, ErrorCode.OFFSET_OUT_OF_RANGE, -1, -1, -1, None, 0)])]), version
