"""internal.segment.bytes, Kafka 4.4's internal topic config (LogConfig's defineInternal, INT,
no default, no validator), answered as the reference Kafka 4.4 answers it: CreateTopics,
AlterConfigs and IncrementalAlterConfigs take it (any INT, below segment.bytes' 1 MiB floor
too), DescribeConfigs and CreateTopics' configs list it only where a topic sets it, as given,
and it stands in for segment.bytes (LogConfig.segmentSize): the active segment rolls past it and
a batch larger is RECORD_LIST_TOO_LARGE."""

from __future__ import annotations

from pathlib import Path

from kafka_wire import WireClient, build_records
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

TOPIC, DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG = 2, 1, 5
KEY = "internal.segment.bytes"


def _create(client: WireClient, name: str, configs: dict[str, str], validate_only: bool = False) -> dict:
    answer = client.call(ApiKey.CREATE_TOPICS, 7, {
        "topics": [{"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [],
                    "configs": [{"name": k, "value": v} for k, v in configs.items()]}],
        "timeout_ms": 30000, "validate_only": validate_only})
    (topic,) = answer["topics"]
    return topic


def _segment_sizes(topic: dict) -> list[tuple[str, str, int]]:
    return [(entry["name"], entry["value"], entry["config_source"]) for entry in topic["configs"] or [] if "segment.bytes" in entry["name"]]


def _described(client: WireClient, name: str, keys: list[str] | None = None) -> list[tuple[str, str, int, list]]:
    answer = client.call(ApiKey.DESCRIBE_CONFIGS, 4, {"resources": [{"resource_type": TOPIC, "resource_name": name, "configuration_keys": keys}],
                                                      "include_synonyms": True, "include_documentation": False})
    (result,) = answer["results"]
    assert result["error_code"] == ErrorCode.NONE, result
    return [(e["name"], e["value"], e["config_source"], [(s["name"], s["value"], s["source"]) for s in e["synonyms"]])
            for e in result["configs"] if "segment.bytes" in e["name"]]


def test_create_topics_takes_any_int_and_lists_it_as_given() -> None:
    with running_broker(data_dir=None) as broker:
        client = WireClient(broker.bootstrap_servers)
        try:
            for value in ("-1", "0", "13", " 2000 "):
                topic = _create(client, "validated", {KEY: value}, validate_only=True)
                assert (topic["error_code"], _segment_sizes(topic)) == (
                    ErrorCode.NONE, [(KEY, value, DYNAMIC_TOPIC_CONFIG), ("segment.bytes", "1073741824", DEFAULT_CONFIG)]), value
            for value in ("abc", "2147483648"):
                topic = _create(client, "refused", {KEY: value}, validate_only=True)
                assert (topic["error_code"], topic["error_message"]) == (
                    ErrorCode.INVALID_CONFIG, f"Invalid value {value} for configuration {KEY}: Not a number of type INT")
            assert _segment_sizes(_create(client, "plain", {})) == [("segment.bytes", "1073741824", DEFAULT_CONFIG)]
            assert _described(client, "plain", [KEY, "segment.bytes"]) == [("segment.bytes", "1073741824", DEFAULT_CONFIG, [("log.segment.bytes", "1073741824", DEFAULT_CONFIG)])]
        finally:
            client.close()


def test_alter_configs_set_it_and_describe_configs_then_lists_it() -> None:
    with running_broker(data_dir=None) as broker:
        client = WireClient(broker.bootstrap_servers)
        try:
            assert _create(client, "altered", {})["error_code"] == ErrorCode.NONE
            legacy = client.call(ApiKey.ALTER_CONFIGS, 2, {"resources": [{"resource_type": TOPIC, "resource_name": "altered",
                                                                           "configs": [{"name": KEY, "value": "700"}]}], "validate_only": False})
            assert legacy["responses"][0]["error_code"] == ErrorCode.NONE, legacy
            assert _described(client, "altered")[0] == (KEY, "700", DYNAMIC_TOPIC_CONFIG, [(KEY, "700", DYNAMIC_TOPIC_CONFIG)])
            operations = [
                ({"name": KEY, "config_operation": 2, "value": "1000"}, ErrorCode.INVALID_CONFIG, f"Can't APPEND to key {KEY} because its type is not LIST."),
                ({"name": KEY, "config_operation": 0, "value": "-5"}, ErrorCode.NONE, None),
                ({"name": KEY, "config_operation": 1, "value": None}, ErrorCode.NONE, None),
            ]
            for operation, code, message in operations:
                answer = client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {
                    "resources": [{"resource_type": TOPIC, "resource_name": "altered", "configs": [operation]}], "validate_only": False})
                (response,) = answer["responses"]
                assert (response["error_code"], response["error_message"]) == (code, message), operation
            assert [name for name, *_ in _described(client, "altered")] == ["segment.bytes"]
        finally:
            client.close()


def test_it_is_the_segment_size(tmp_path: Path) -> None:
    """Each 2xx-byte batch rolls a segment of its own under 500 bytes (the reference Kafka's
    log directory holds six .log files after six), and an 8xx-byte batch is refused."""
    with running_broker(data_dir=str(tmp_path)) as broker:
        client = WireClient(broker.bootstrap_servers)
        try:
            assert _create(client, "small", {KEY: "500"})["error_code"] == ErrorCode.NONE

            def produce(key: bytes, value: bytes) -> int:
                answer = client.call(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
                    {"name": "small", "partition_data": [{"index": 0, "records": build_records(2, [(key, value)])}]}]})
                return answer["responses"][0]["partition_responses"][0]["error_code"]

            assert [produce(b"k%d" % i, b"v" * 200) for i in range(6)] == [ErrorCode.NONE] * 6
            assert produce(b"big", b"v" * 800) == ErrorCode.RECORD_LIST_TOO_LARGE
            assert len(sorted(tmp_path.rglob("small-0/*.log"))) == 6
        finally:
            client.close()
