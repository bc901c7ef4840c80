"""The differential fuzzer's tooling (compat/fuzz_differential.py): Kafka 4.4's own crashes are
counted apart from differences, and the coordinators' topics are sized alike on both brokers."""

from __future__ import annotations

from compat.differential import REFERENCE_SETTINGS, _Connection
from compat.fuzz_differential import COORDINATOR_PARTITIONS, KNOWN_KAFKA_CRASHES, Report, known_crash
from compat.harness import OttlaBroker
from ottla.wire.api import ApiKey


def test_a_known_kafka_crash_needs_its_request_shape_and_kafkas_answer() -> None:
    list_offsets = {"replica_id": -1, "isolation_level": 2, "topics": []}
    crash = known_crash(ApiKey.LIST_OFFSETS, 5, list_offsets, "UNKNOWN_SERVER_ERROR")
    assert crash is not None and "isolation level" in crash.what
    named_empty = {"topics": [{"name": ""}], "response_partition_limit": 0, "cursor": None}
    assert known_crash(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, named_empty, "UNKNOWN_SERVER_ERROR") is not None
    assert known_crash(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, named_empty, "INVALID_TOPIC_EXCEPTION") is None  # Kafka did not crash
    assert known_crash(ApiKey.LIST_OFFSETS, 5, list_offsets | {"isolation_level": 1}, "UNKNOWN_SERVER_ERROR") is None
    join = {"group_id": "g", "protocols": [{"name": "range", "metadata": b""}, {"name": "range", "metadata": b""}]}
    assert known_crash(ApiKey.JOIN_GROUP, 9, join, "no answer") is not None
    assert known_crash(ApiKey.JOIN_GROUP, 9, join, "UNKNOWN_SERVER_ERROR") is None
    assert known_crash(ApiKey.JOIN_GROUP, 9, join | {"protocols": join["protocols"][:1]}, "no answer") is None
    offset_fetch = {"groups": [{"group_id": "g", "member_id": None, "member_epoch": -1, "topics": None}], "require_stable": False}
    assert known_crash(ApiKey.OFFSET_FETCH, 9, offset_fetch, "UNKNOWN_SERVER_ERROR") is not None
    assert known_crash(ApiKey.OFFSET_FETCH, 8, offset_fetch, "UNKNOWN_SERVER_ERROR") is None
    produce = {"acks": 1, "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": None}]}]}
    assert known_crash(ApiKey.PRODUCE, 9, produce, "no answer") is not None
    assert len({crash.what for crash in KNOWN_KAFKA_CRASHES}) == len(KNOWN_KAFKA_CRASHES)


def test_a_crash_before_the_entries_explains_any_difference_and_fetch_sessions_crash_past_the_shards() -> None:
    # Kafka's error path lists a topic with no partitions that its answer would leave out.
    assert known_crash(ApiKey.LIST_OFFSETS, 5, {"isolation_level": -13, "topics": [{"name": "", "partitions": []}]}, "present") is not None
    assert known_crash(ApiKey.LIST_OFFSETS, 1, {"replica_id": -1, "topics": []}, "present") is None  # no isolation level before v2
    fetch = {"max_bytes": 1 << 20, "session_epoch": 1}
    for session_id in (2_147_483_647, -1_651_662_517, -268_435_455, 2_147_483_640):
        assert known_crash(ApiKey.FETCH, 12, fetch | {"session_id": session_id}, "UNKNOWN_SERVER_ERROR") is not None, session_id
    for session_id in (-1, 0, 1, 1_048_576, -268_435_454, 2_147_483_639):  # in the shards: FETCH_SESSION_ID_NOT_FOUND alike
        assert known_crash(ApiKey.FETCH, 12, fetch | {"session_id": session_id}, "UNKNOWN_SERVER_ERROR") is None, session_id
    partition = {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}
    zero_twice = fetch | {"session_id": 0, "topics": [{"topic_id": bytes(16), "partitions": [partition, partition | {"partition": 1}]}]}
    assert known_crash(ApiKey.FETCH, 13, zero_twice, "UNKNOWN_SERVER_ERROR") is not None
    zero_once = zero_twice | {"topics": [{"topic_id": bytes(16), "partitions": [partition]}]}
    assert known_crash(ApiKey.FETCH, 13, zero_once, "UNKNOWN_SERVER_ERROR") is None  # answered UNKNOWN_TOPIC_ID alike


def test_known_kafka_crashes_are_counted_apart_from_differences() -> None:
    report = Report(seed=5)
    report.add("FETCH", 12, ".error_code", "NONE", "OFFSET_OUT_OF_RANGE", 3)
    report.crashes["Fetch with a negative max_bytes"] = [7, 9]
    lines = report.lines(lambda index: f"replay {index}")
    assert lines[0].endswith("1 kinds of difference in 1 requests; 2 requests met a known Kafka crash (KNOWN_KAFKA_CRASHES)")
    assert lines[3:] == ["    2x known Kafka crash, not a difference: Fetch with a negative max_bytes", "        replay: replay 7"]
    assert all(line.strip().startswith("replay: replay ") for line in lines[2::2])  # entries stay pairs


def test_the_fuzzers_ottla_sizes_the_coordinators_topics_as_kafka_does() -> None:
    with OttlaBroker(settings=REFERENCE_SETTINGS | COORDINATOR_PARTITIONS) as broker:
        conn = _Connection(broker.bootstrap)
        try:
            for key_type in (0, 1):  # creates each coordinator's topic
                assert conn.call(ApiKey.FIND_COORDINATOR, 3, {"key": "g", "key_type": key_type})["error_code"] == 0
            answer = conn.call(ApiKey.METADATA, 12, {"topics": [{"name": name, "topic_id": bytes(16)} for name in (
                "__consumer_offsets", "__transaction_state")], "allow_auto_topic_creation": False,
                "include_topic_authorized_operations": False})
        finally:
            conn.close()
    assert {t["name"]: len(t["partitions"]) for t in answer["topics"]} == {"__consumer_offsets": 50, "__transaction_state": 50}
