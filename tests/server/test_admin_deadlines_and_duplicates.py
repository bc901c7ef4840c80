"""Admin requests with a past deadline, duplicated names or empty topics, answered as Kafka 4.4
answers them, over raw requests to a real broker: CreateTopics and CreatePartitions run as
controller events due by the request's timeout_ms (ControllerApis), ListOffsets and
DeleteRecords file their answers by partition (ReplicaManager.fetchOffset,
KafkaApis.handleDeleteRecordsRequest)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


@pytest.fixture
def connection() -> Iterator[_Connection]:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("grown", partitions=2)
        connection = _Connection(broker.bootstrap_servers)
        try:
            yield connection
        finally:
            connection.close()


def _creatable(name: str) -> dict[str, Any]:
    return {"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}


def _topic_names(connection: _Connection) -> set[str]:
    answer = connection.call(ApiKey.METADATA, 12, {"topics": None, "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})
    return {topic["name"] for topic in answer["topics"]}


@pytest.mark.parametrize("timeout_ms", [0, -1])
def test_create_topics_past_its_deadline_times_out_every_copy_and_creates_nothing(connection: _Connection, timeout_ms: int) -> None:
    """The controller's queue times the event out before running it: every topic of the
    request, each copy of a duplicated name too, is REQUEST_TIMED_OUT without a message."""
    for validate_only in (False, True):
        answer = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [_creatable("late"), _creatable("twice"), _creatable("twice")],
                                                          "timeout_ms": timeout_ms, "validate_only": validate_only})
        assert [(t["name"], t["error_code"], t["error_message"]) for t in answer["topics"]] == [
            ("late", ErrorCode.REQUEST_TIMED_OUT, None), ("twice", ErrorCode.REQUEST_TIMED_OUT, None), ("twice", ErrorCode.REQUEST_TIMED_OUT, None)]
    assert not {"late", "twice"} & _topic_names(connection)


def test_create_topics_past_its_deadline_still_answers_what_never_reaches_the_controller(connection: _Connection) -> None:
    """Duplicated names and the metadata log's are answered by ControllerApis itself; with
    nothing left for the controller no event is queued, so nothing times out."""
    answer = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [_creatable("twice"), _creatable("twice"), _creatable("__cluster_metadata")],
                                                      "timeout_ms": 0, "validate_only": False})
    assert [(t["name"], t["error_code"], t["error_message"]) for t in answer["topics"]] == [
        ("twice", ErrorCode.INVALID_REQUEST, "Duplicate topic name."),
        ("__cluster_metadata", ErrorCode.INVALID_REQUEST, "Creation of internal topic __cluster_metadata is prohibited.")]


def test_create_topics_refuses_the_metadata_log_name_even_to_validate(connection: _Connection) -> None:
    answer = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [_creatable("__cluster_metadata")], "timeout_ms": 5000, "validate_only": True})
    assert answer["topics"][0]["error_code"] == ErrorCode.INVALID_REQUEST


def _partition_count(connection: _Connection, name: str) -> int:
    answer = connection.call(ApiKey.METADATA, 12, {"topics": [{"topic_id": bytes(16), "name": name}], "allow_auto_topic_creation": False,
                                                  "include_topic_authorized_operations": False})
    return len(answer["topics"][0]["partitions"])


@pytest.mark.parametrize("version", [0, 3])
def test_create_partitions_past_its_deadline_times_out_every_copy_and_grows_nothing(connection: _Connection, version: int) -> None:
    answer = connection.call(ApiKey.CREATE_PARTITIONS, version, {"topics": [
        {"name": "grown", "count": 4, "assignments": None}, {"name": "absent", "count": 2, "assignments": None},
        {"name": "absent", "count": 2, "assignments": None}], "timeout_ms": 0, "validate_only": False})
    assert [(r["name"], r["error_code"], r["error_message"]) for r in answer["results"]] == [
        ("grown", ErrorCode.REQUEST_TIMED_OUT, None), ("absent", ErrorCode.REQUEST_TIMED_OUT, None), ("absent", ErrorCode.REQUEST_TIMED_OUT, None)]
    assert _partition_count(connection, "grown") == 2


def test_create_partitions_answers_a_duplicated_name_once_first_and_an_unknown_topic_without_message(connection: _Connection) -> None:
    """ControllerApis.createPartitions: duplicates once, before the controller's answers; only
    duplicates left means no event, so a past deadline does not matter."""
    answer = connection.call(ApiKey.CREATE_PARTITIONS, 3, {"topics": [
        {"name": "absent", "count": 2, "assignments": None}, {"name": "grown", "count": 3, "assignments": None},
        {"name": "grown", "count": 3, "assignments": None}], "timeout_ms": 5000, "validate_only": True})
    assert [(r["name"], r["error_code"], r["error_message"]) for r in answer["results"]] == [
        ("grown", ErrorCode.INVALID_REQUEST, "Duplicate topic name."), ("absent", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None)]
    only_duplicates = connection.call(ApiKey.CREATE_PARTITIONS, 3, {"topics": [
        {"name": "grown", "count": 3, "assignments": None}, {"name": "grown", "count": 3, "assignments": None}], "timeout_ms": 0, "validate_only": False})
    assert [(r["name"], r["error_code"]) for r in only_duplicates["results"]] == [("grown", ErrorCode.INVALID_REQUEST)]


def _offsets_asked(*topics: tuple[str, list[int]]) -> dict[str, Any]:
    return {"replica_id": -1, "isolation_level": 0, "timeout_ms": 1000, "topics": [
        {"name": name, "partitions": [{"partition_index": index, "current_leader_epoch": -1, "timestamp": -1} for index in indexes]}
        for name, indexes in topics]}


def test_list_offsets_answers_a_topic_once_and_not_one_named_without_partitions(connection: _Connection) -> None:
    answer = connection.call(ApiKey.LIST_OFFSETS, 9, _offsets_asked(("grown", [0]), ("absent", []), ("grown", [1]), ("grown", [])))
    assert [(t["name"], sorted((p["partition_index"], p["error_code"]) for p in t["partitions"])) for t in answer["topics"]] == [
        ("grown", [(0, ErrorCode.NONE), (1, ErrorCode.NONE)])]
    duplicated = connection.call(ApiKey.LIST_OFFSETS, 9, _offsets_asked(("absent", [0]), ("absent", [0])))
    assert [(t["name"], [(p["partition_index"], p["error_code"]) for p in t["partitions"]]) for t in duplicated["topics"]] == [
        ("absent", [(0, ErrorCode.INVALID_REQUEST)])]


def test_delete_records_answers_each_partition_once_up_to_the_last_offset_given(connection: _Connection) -> None:
    """A partition named twice is deleted up to its last offset (past the high watermark 0:
    OFFSET_OUT_OF_RANGE), answered once; a topic named twice once; one without partitions not at all."""
    answer = connection.call(ApiKey.DELETE_RECORDS, 2, {"timeout_ms": 1000, "topics": [
        {"name": "grown", "partitions": [{"partition_index": 0, "offset": 0}, {"partition_index": 0, "offset": 5}]},
        {"name": "absent", "partitions": []},
        {"name": "grown", "partitions": [{"partition_index": 1, "offset": 0}]}]})
    assert [(t["name"], sorted((p["partition_index"], p["error_code"]) for p in t["partitions"])) for t in answer["topics"]] == [
        ("grown", [(0, ErrorCode.OFFSET_OUT_OF_RANGE), (1, ErrorCode.NONE)])]


@pytest.mark.parametrize("fields, message", [
    ({"replication_factor": 3}, "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
    ({"num_partitions": 0}, "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
    ({"num_partitions": 2, "assignments": [{"partition_index": 0, "broker_ids": [1]}]}, "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
])
def test_create_topics_judges_configs_before_replicas_and_partitions(connection: _Connection, fields: dict[str, Any], message: str) -> None:
    """ReplicationControlManager.createTopics checks a new topic's configs before createTopic
    checks its replication factor, partition count and assignments."""
    topic = {**_creatable("configured"), "configs": [{"name": "retention.ms", "value": "abc"}], **fields}
    answer = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [topic], "timeout_ms": 5000, "validate_only": True})
    assert (answer["topics"][0]["error_code"], answer["topics"][0]["error_message"]) == (ErrorCode.INVALID_CONFIG, message)


def test_create_topics_names_every_null_config_and_takes_a_repeated_key_last(connection: _Connection) -> None:
    nulls = {**_creatable("configured"), "replication_factor": 3,
             "configs": [{"name": "nope.config", "value": "1"}, {"name": "retention.ms", "value": None}, {"name": "segment.ms", "value": None}]}
    answer = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [nulls], "timeout_ms": 5000, "validate_only": True})
    assert (answer["topics"][0]["error_code"], answer["topics"][0]["error_message"]) == (
        ErrorCode.INVALID_CONFIG, "Null value not supported for topic configs: retention.ms,segment.ms")
    repeated = {**_creatable("configured"), "configs": [{"name": "retention.ms", "value": "abc"}, {"name": "retention.ms", "value": "2000"}]}
    answer = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [repeated], "timeout_ms": 5000, "validate_only": False})
    assert answer["topics"][0]["error_code"] == ErrorCode.NONE
    assert {c["name"]: c["value"] for c in answer["topics"][0]["configs"]}["retention.ms"] == "2000"


def test_altering_a_missing_topic_judges_its_configs_first(connection: _Connection) -> None:
    """ConfigurationControlManager validates the change before asking whether the topic exists."""
    legacy = connection.call(ApiKey.ALTER_CONFIGS, 2, {"validate_only": False, "resources": [
        {"resource_type": 2, "resource_name": "absent", "configs": [{"name": "retention.ms", "value": "abc"}]},
        {"resource_type": 2, "resource_name": "missing", "configs": [{"name": "retention.ms", "value": "1000"}]}]})
    assert [r["error_code"] for r in legacy["responses"]] == [ErrorCode.INVALID_CONFIG, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]
    incremental = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": True, "resources": [
        {"resource_type": 2, "resource_name": "absent", "configs": [{"name": "nope.config", "config_operation": 0, "value": "1"}]},
        {"resource_type": 2, "resource_name": "gone", "configs": [{"name": "retention.ms", "config_operation": 2, "value": "5"}]},
        {"resource_type": 2, "resource_name": "missing", "configs": [{"name": "retention.ms", "config_operation": 0, "value": "1000"}]}]})
    assert [(r["error_code"], r["error_message"]) for r in incremental["responses"]] == [
        (ErrorCode.INVALID_CONFIG, "Unknown topic config name: nope.config"),
        (ErrorCode.INVALID_CONFIG, "Can't APPEND to key retention.ms because its type is not LIST."),
        (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "The topic 'missing' does not exist.")]


def _described(connection: _Connection, *resources: tuple[int, str, list[str] | None]) -> list[dict[str, Any]]:
    answer = connection.call(ApiKey.DESCRIBE_CONFIGS, 4, {"resources": [
        {"resource_type": kind, "resource_name": name, "configuration_keys": keys} for kind, name, keys in resources],
        "include_synonyms": False, "include_documentation": False})
    return list(answer["results"])


def test_describe_configs_fails_whole_on_a_resource_type_kafka_does_not_know(connection: _Connection) -> None:
    """ConfigHelper throws InvalidRequestException while sorting the resources by authorization."""
    results = _described(connection, (2, "grown", None), (127, "x", None), (4, "1", None))
    assert [(r["resource_type"], r["error_code"], r["configs"]) for r in results] == [
        (2, ErrorCode.INVALID_REQUEST, []), (127, ErrorCode.INVALID_REQUEST, []), (4, ErrorCode.INVALID_REQUEST, [])]


def test_describe_configs_with_an_empty_key_list_gives_every_config(connection: _Connection) -> None:
    """ConfigHelperUtils.createResponseConfig: null or empty configuration_keys, every config."""
    every, empty = _described(connection, (2, "grown", None), (2, "grown", []))
    assert every["configs"] and [c["name"] for c in empty["configs"]] == [c["name"] for c in every["configs"]]


@pytest.mark.parametrize("fields, error, message", [
    ({"replication_factor": 0, "num_partitions": 2, "assignments": [{"partition_index": 1, "broker_ids": []}]},
     ErrorCode.INVALID_REQUEST, "A manual partition assignment was specified, but replication factor was not set to -1."),
    ({"replication_factor": -1, "num_partitions": 2, "assignments": [{"partition_index": 0, "broker_ids": [1]}]},
     ErrorCode.INVALID_REQUEST, "A manual partition assignment was specified, but numPartitions was not set to -1."),
    ({"replication_factor": 3, "num_partitions": -3}, ErrorCode.INVALID_PARTITIONS, "Number of partitions was set to an invalid non-positive value."),
])
def test_create_topics_judges_manual_assignments_before_the_counts_values(
    connection: _Connection, fields: dict[str, Any], error: ErrorCode, message: str
) -> None:
    """ReplicationControlManager.createTopic: with assignments both counts must be -1 (the
    factor asked first), whatever their values; without, each count's value is judged."""
    answer = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{**_creatable("shaped"), **fields}], "timeout_ms": 5000, "validate_only": True})
    assert (answer["topics"][0]["error_code"], answer["topics"][0]["error_message"]) == (error, message)


def test_incremental_alter_configs_applies_operations_before_judging_names(connection: _Connection) -> None:
    """ConfigurationControlManager applies the operations first (APPEND or SUBTRACT on a key
    that is no list, an unknown one too, refused there), then judges the resource's name and
    what is left set, then the topic's existence: deleting an unknown name is no error."""
    def altered(name: str, config: str, operation: int) -> tuple[int, str | None]:
        answer = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": True, "resources": [
            {"resource_type": 2, "resource_name": name, "configs": [{"name": config, "config_operation": operation, "value": "x"}]}]})
        return answer["responses"][0]["error_code"], answer["responses"][0]["error_message"]

    not_a_list = (ErrorCode.INVALID_CONFIG, "Can't SUBTRACT to key nope.config because its type is not LIST.")
    assert altered("bad/name", "nope.config", 3) == not_a_list
    assert altered("", "nope.config", 3) == not_a_list
    assert altered("grown", "nope.config", 1) == (ErrorCode.NONE, None)
    assert altered("absent", "nope.config", 1) == (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "The topic 'absent' does not exist.")


def test_an_illegal_topic_name_is_refused_in_topic_validates_words() -> None:
    """CreateTopics and the config APIs refuse it INVALID_TOPIC in Topic.validate's words, as
    the reference Kafka 4.4 words them."""
    names = ["bad name!", ".", ""]
    words = ["Topic name is invalid: 'bad name!' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'",
             "Topic name is invalid: '.' is not allowed", "Topic name is invalid: the empty string is not allowed"]
    with running_broker(data_dir=None) as broker:
        connection = _Connection(broker.bootstrap_servers)
        created = connection.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": True, "topics": [
            {"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []} for name in names]})
        assert [(t["error_code"], t["error_message"]) for t in created["topics"]] == [(ErrorCode.INVALID_TOPIC, word) for word in words]
        described = connection.call(ApiKey.DESCRIBE_CONFIGS, 4, {"include_synonyms": False, "include_documentation": False, "resources": [
            {"resource_type": 2, "resource_name": name, "configuration_keys": None} for name in names]})
        assert [(r["error_code"], r["error_message"]) for r in described["results"]] == [(ErrorCode.INVALID_TOPIC, word) for word in words]
