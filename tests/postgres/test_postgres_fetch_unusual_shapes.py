"""Fetch requests of unusual shape over PostgreSQL, whose reads are coroutines, answered as
Kafka 4.4 answers them on one node (tests/server/test_fetch_unusual_shapes.py has the local
engine's): a negative partition_max_bytes fails a read below the high watermark, an
isolation_level other than 0 and 1 fails the whole request."""

from __future__ import annotations

from typing import Any

import pytest

from compat.harness import OttlaBroker
from ottla.server.admin.client import Connection
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

pytestmark = pytest.mark.external


def _fetch(connection: Connection, partitions: list[tuple[int, int]], isolation_level: int = 0) -> dict[str, Any]:
    """A fetch of partition 0 at each (fetch offset, partition_max_bytes)."""
    return connection.request(ApiKey.FETCH, 12, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": isolation_level, "session_id": 0,
        "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [], "topics": [{"topic": "shapes", "partitions": [
            {"partition": 0, "current_leader_epoch": -1, "fetch_offset": offset, "last_fetched_epoch": -1, "log_start_offset": -1,
             "partition_max_bytes": max_bytes} for offset, max_bytes in partitions]}]})


def _rows(answer: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(p["error_code"], p["high_watermark"], p["aborted_transactions"], len(p["records"] or b""))
            for topic in answer["responses"] for p in topic["partitions"]]


def test_unusual_fetches_over_the_database(postgres_url: str) -> None:
    with OttlaBroker(storage=postgres_url, node_id=1, ready_timeout=60, stop_timeout=30) as broker:
        host, port = broker.bootstrap.rsplit(":", 1)
        connection = Connection(host, int(port), 30.0, "pg-unusual-fetch-test")
        answer = connection.request(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": "shapes", "num_partitions": 1, "replication_factor": -1,
                                                                          "assignments": [], "configs": []}], "timeout_ms": 30_000, "validate_only": False})
        assert answer["topics"][0]["error_code"] == ErrorCode.NONE
        for i in range(5):
            batch = build_batch([Record(0, 1_700_000_000_000, None, b"v%d" % i, ())])
            produced = connection.request(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 10_000, "transactional_id": None, "topic_data": [
                {"name": "shapes", "partition_data": [{"index": 0, "records": batch}]}]})
            assert produced["responses"][0]["partition_responses"][0]["error_code"] == ErrorCode.NONE
        failed = (ErrorCode.UNKNOWN_SERVER_ERROR, -1, None, 0)
        assert _rows(_fetch(connection, [(0, -1)])) == [failed]
        assert _rows(_fetch(connection, [(0, -1)], isolation_level=1)) == [failed]
        assert _rows(_fetch(connection, [(5, -1)])) == [(ErrorCode.NONE, 5, None, 0)]
        # Named twice: read once, with what it was last asked for (offset 4: one 70-byte batch).
        assert _rows(_fetch(connection, [(0, -1), (4, 1 << 20)])) == [(ErrorCode.NONE, 5, None, 70)]
        answer = _fetch(connection, [(0, 1 << 20)], isolation_level=2)
        assert answer["error_code"] == ErrorCode.UNKNOWN_SERVER_ERROR
        assert _rows(answer) == [(ErrorCode.UNKNOWN_SERVER_ERROR, -1, [], 0)]
        connection.close()
