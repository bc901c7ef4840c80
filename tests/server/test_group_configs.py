"""Per-group configs (the GROUP config resource), without sockets: Kafka 4.4's keys, defaults
from the broker's settings, its refusals word for word (asked of the reference broker with
IncrementalAlterConfigs), persistence, and the consumer group coordinator running each group
with its own session timeout and heartbeat interval."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ottla.server.config import all_keys
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.server.groups.group_configs import DEFAULT_CONFIG, GROUP_CONFIG_SOURCE, KEYS, GroupConfigs
from ottla.wire.errors import ErrorCode, KafkaError
from tests.server.test_consumer_groups import Harness
from tests.server.test_features import Client

GROUP = 32  # ConfigResource.Type.GROUP
SET, DELETE, APPEND = 0, 1, 2


def _configs(data_dir: Path | None = None, **broker: object) -> GroupConfigs:
    return GroupConfigs(data_dir, lambda name: broker.get(name, all_keys()[name].default))


def test_kafka_4_4_lists_these_group_configs() -> None:
    assert len(KEYS) == 21
    described = {entry.key.name: (entry.value, entry.source, entry.synonyms) for entry in _configs().describe("g")}
    assert described["consumer.session.timeout.ms"] == ("45000", DEFAULT_CONFIG, (("group.consumer.session.timeout.ms", "45000", DEFAULT_CONFIG),))
    assert described["streams.assignor.name"][0] == "sticky"
    assert described["share.isolation.level"] == ("read_uncommitted", DEFAULT_CONFIG, (("share.isolation.level", "read_uncommitted", DEFAULT_CONFIG),))
    assert described["streams.rack.aware.assignment.tags"][0] == ""


@pytest.mark.parametrize(("name", "value", "message"), [
    ("consumer.session.timeout.ms", "1000", "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive."),
    ("consumer.heartbeat.interval.ms", "50000", "consumer.heartbeat.interval.ms must be in the range 5000 to 15000 inclusive."),
    ("bogus.key", "1", "Unknown group config name: bogus.key"),
    ("consumer.session.timeout.ms", "abc", "Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT"),
    ("consumer.session.timeout.ms", "0", "Invalid value 0 for configuration consumer.session.timeout.ms: Value must be at least 1"),
    ("share.isolation.level", "bogus", "Invalid value bogus for configuration share.isolation.level: String must be one of: read_committed, read_uncommitted"),
    ("share.delivery.count.limit", "100", "share.delivery.count.limit must be in the range 2 to 10 inclusive."),
    ("streams.num.standby.replicas", "5", "streams.num.standby.replicas must be less than or equal to 2"),
    ("consumer.assignment.interval.ms", "20000", "consumer.assignment.interval.ms must be in the range 0 to 15000 inclusive."),
    ("errors.deadletterqueue.copy.record.enable", "maybe",
     "Invalid value maybe for configuration errors.deadletterqueue.copy.record.enable: Expected value to be either true or false"),
    ("share.record.lock.duration.ms", "500", "Invalid value 500 for configuration share.record.lock.duration.ms: Value must be at least 1000"),
    ("streams.assignor.name", "bogus", "streams.assignor.name 'bogus' is not a registered task assignor. Registered assignors are: [sticky]."),
    ("share.auto.offset.reset", "bogus", "Invalid value bogus for configuration share.auto.offset.reset: Invalid value `bogus` for configuration "
     "share.auto.offset.reset. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'."),
])
def test_refusals_are_worded_as_kafka_4_4_words_them(name: str, value: str, message: str) -> None:
    configs = _configs()
    with pytest.raises(KafkaError) as refused:
        configs.replace("g", {name: value}, validate_only=False)
    assert (refused.value.code, refused.value.message) == (ErrorCode.INVALID_CONFIG, message)
    assert configs.overrides == {}


@pytest.mark.parametrize(("name", "value"), [
    ("consumer.session.timeout.ms", " 50000 "), ("share.auto.offset.reset", "by_duration:PT1H"), ("share.isolation.level", "read_committed"),
    ("errors.deadletterqueue.topic.name", "dlq"), ("streams.rack.aware.assignment.tags", "a,b"),
])
def test_values_kafka_accepts(name: str, value: str) -> None:
    _configs().replace("g", {name: value}, validate_only=False)


def test_the_bounds_are_the_brokers_settings() -> None:
    configs = _configs(**{"group.consumer.min.session.timeout.ms": 1000})
    configs.replace("g", {"consumer.session.timeout.ms": "1000"}, validate_only=False)
    assert configs.value("g", "consumer.session.timeout.ms") == 1000


def test_the_default_group_resource_is_refused() -> None:
    with pytest.raises(KafkaError) as refused:
        _configs().replace("", {"consumer.session.timeout.ms": "50000"}, validate_only=False)
    assert (refused.value.code, refused.value.message) == (ErrorCode.INVALID_REQUEST, "Default group resources are not allowed.")


def test_an_override_is_described_over_its_broker_synonym_and_survives_a_restart(tmp_path: Path) -> None:
    configs = _configs(tmp_path)
    configs.replace("g", {"consumer.heartbeat.interval.ms": "6000"}, validate_only=True)
    assert configs.value("g", "consumer.heartbeat.interval.ms") == 5000
    configs.replace("g", {"consumer.heartbeat.interval.ms": "6000"}, validate_only=False)
    reopened = _configs(tmp_path)
    [entry] = reopened.describe("g", ["consumer.heartbeat.interval.ms", "nope"])
    assert (entry.value, entry.source, entry.synonyms) == ("6000", GROUP_CONFIG_SOURCE, (
        ("consumer.heartbeat.interval.ms", "6000", GROUP_CONFIG_SOURCE), ("group.consumer.heartbeat.interval.ms", "5000", DEFAULT_CONFIG)))
    assert reopened.value("other", "consumer.heartbeat.interval.ms") == 5000
    reopened.replace("g", {}, validate_only=False)
    assert _configs(tmp_path).overrides == {}


def test_a_consumer_group_runs_with_its_own_session_timeout_and_heartbeat_interval() -> None:
    h = Harness()
    h.topic("t", 2)
    h.coordinator.configs.replace("g", {"consumer.session.timeout.ms": "50000", "consumer.heartbeat.interval.ms": "6000"}, validate_only=False)
    assert h.beat("m1", 0).heartbeat_interval_ms == 6000
    assert h.beat("m2", 0, group="other").heartbeat_interval_ms == 5000
    h.clock.advance(49)  # past the harness's 10 s broker default, short of the group's 50 s
    assert "m1" in h.group().members
    assert "m2" not in h.group("other").members
    h.clock.advance(2)
    assert "m1" not in h.group().members


def test_kafka_s_group_config_answers_over_the_wire(tmp_path: Path) -> None:
    """IncrementalAlterConfigs and DescribeConfigs on the GROUP resource, each answer as the
    reference Kafka 4.4 gave it; the override outlives a restart and reaches the group."""
    def alter(client: Client, name: str, *configs: tuple[str, int, str | None]) -> dict[str, object]:
        answer = client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": False, "resources": [{
            "resource_type": GROUP, "resource_name": name, "configs": [{"name": n, "config_operation": op, "value": v} for n, op, v in configs]}]})
        [response] = answer["responses"]
        return {"error_code": response["error_code"], "error_message": response["error_message"]}

    def describe(client: Client, keys: list[str] | None) -> list[dict[str, object]]:
        answer = client.call(ApiKey.DESCRIBE_CONFIGS, 4, {"include_synonyms": True, "include_documentation": False,
                                                          "resources": [{"resource_type": GROUP, "resource_name": "g1", "configuration_keys": keys}]})
        [result] = answer["results"]
        assert result["error_code"] == ErrorCode.NONE
        return result["configs"]

    data = str(tmp_path / "data")
    with running_broker(data_dir=data) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            assert len(describe(client, None)) == 21
            assert alter(client, "g1", ("consumer.heartbeat.interval.ms", SET, "6000")) == {"error_code": ErrorCode.NONE, "error_message": None}
            # kafka-configs --describe --entity-type groups asks which groups have configs first.
            assert client.call(ApiKey.LIST_CONFIG_RESOURCES, 1, {"resource_types": [GROUP]})["config_resources"] == [
                {"resource_name": "g1", "resource_type": GROUP}]
            assert alter(client, "g1", ("consumer.session.timeout.ms", SET, "1000")) == {
                "error_code": ErrorCode.INVALID_CONFIG, "error_message": "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive."}
            assert alter(client, "g1", ("consumer.session.timeout.ms", APPEND, "46000")) == {
                "error_code": ErrorCode.INVALID_CONFIG, "error_message": "Can't APPEND to key consumer.session.timeout.ms because its type is not LIST."}
            assert alter(client, "", ("consumer.session.timeout.ms", SET, "50000")) == {
                "error_code": ErrorCode.INVALID_REQUEST, "error_message": "Default group resources are not allowed."}
            assert alter(client, "g1", ("consumer.session.timeout.ms", SET, "50000"), ("consumer.session.timeout.ms", SET, "51000")) == {
                "error_code": ErrorCode.INVALID_REQUEST, "error_message": "Error due to duplicate config keys"}
        finally:
            client.close()
    with running_broker(data_dir=data) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            assert describe(client, ["consumer.session.timeout.ms", "consumer.heartbeat.interval.ms"]) == [
                {"name": "consumer.session.timeout.ms", "value": "45000", "read_only": False, "config_source": DEFAULT_CONFIG, "is_sensitive": False,
                 "synonyms": [{"name": "group.consumer.session.timeout.ms", "value": "45000", "source": DEFAULT_CONFIG}], "config_type": 3,
                 "documentation": None},
                {"name": "consumer.heartbeat.interval.ms", "value": "6000", "read_only": False, "config_source": GROUP_CONFIG_SOURCE, "is_sensitive": False,
                 "synonyms": [{"name": "consumer.heartbeat.interval.ms", "value": "6000", "source": GROUP_CONFIG_SOURCE},
                              {"name": "group.consumer.heartbeat.interval.ms", "value": "5000", "source": DEFAULT_CONFIG}], "config_type": 3,
                 "documentation": None},
            ]
            joined = client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, {
                "group_id": "g1", "member_id": str(uuid.uuid4()), "member_epoch": 0, "instance_id": None, "rack_id": None,
                "rebalance_timeout_ms": 30_000, "subscribed_topic_names": ["t"], "server_assignor": None, "topic_partitions": []})
            assert (joined["error_code"], joined["heartbeat_interval_ms"]) == (ErrorCode.NONE, 6000)
        finally:
            client.close()
