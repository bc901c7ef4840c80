"""Free-text messages of admin and coordinator answers as Kafka 4.4 words them, null and ""
apart, over a real socket: each pinned here is what the reference Kafka 4.4 answered the same
request in the differential fuzzer (`compat.fuzz_differential --messages`), checked against
the 4.4 jars (KafkaApis, ConfigHelper, ClientQuotasImage, ControllerConfigurationValidator,
LogConfig, ReplicationControlManager)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest

from kafka_wire import WireClient
from ottla.server.security.authorizer import STANDARD_AUTHORIZER
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, default_message

MALFORMED = default_message(ErrorCode.INVALID_REQUEST)
SHARE_KEY = f"g:{base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b'=').decode()}:0"


class _Client(WireClient):
    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, client_id="answer-messages", timeout=30)


@pytest.fixture(scope="module")
def client() -> Iterator[_Client]:
    with running_broker() as broker:
        connection = _Client(broker.bootstrap_servers)
        created = connection.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 10_000, "validate_only": False, "topics": [
            {"name": "worded", "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}]})
        assert created["topics"][0]["error_code"] == ErrorCode.NONE, created
        try:
            yield connection
        finally:
            connection.sock.close()


@pytest.fixture(scope="module")
def refused() -> Iterator[_Client]:
    """A client the standard authorizer, with no ACLs, refuses everything."""
    with running_broker(authorizer_class_name=STANDARD_AUTHORIZER) as broker:
        connection = _Client(broker.bootstrap_servers)
        try:
            yield connection
        finally:
            connection.sock.close()


def _find(client: _Client, version: int, key_type: int, keys: list[str]) -> list[tuple[int, str | None]]:
    answer = client.call(ApiKey.FIND_COORDINATOR, version, {"key_type": key_type, "key": keys[0], "coordinator_keys": keys})
    if version < 4:
        return [(answer["error_code"], answer["error_message"])]
    return [(found["error_code"], found["error_message"]) for found in answer["coordinators"]]


def test_find_coordinator_words_answers_per_version(client: _Client) -> None:
    """Below v4 "NONE" or the error's default words; from v4 a key's own answer is "", and only
    what fails the whole request (an unknown key type) gives the default words."""
    assert _find(client, 3, 0, ["g"]) == [(ErrorCode.NONE, "NONE")]
    assert _find(client, 1, 3, ["g"]) == [(ErrorCode.INVALID_REQUEST, MALFORMED)]
    assert _find(client, 3, 2, [SHARE_KEY]) == [(ErrorCode.INVALID_REQUEST, MALFORMED)]
    assert _find(client, 4, 3, ["", "g"]) == [(ErrorCode.INVALID_REQUEST, MALFORMED)] * 2
    assert _find(client, 4, 1, ["t"]) == [(ErrorCode.NONE, "")]
    assert _find(client, 5, 2, [SHARE_KEY]) == [(ErrorCode.INVALID_REQUEST, "")]
    assert _find(client, 6, 2, [SHARE_KEY, "bad", ""]) == [(ErrorCode.NONE, ""), (ErrorCode.INVALID_REQUEST, ""), (ErrorCode.INVALID_REQUEST, "")]


def test_find_coordinator_refusals_are_worded_per_version(refused: _Client) -> None:
    assert _find(refused, 3, 0, ["g"]) == [(ErrorCode.GROUP_AUTHORIZATION_FAILED, "Group authorization failed.")]
    assert _find(refused, 4, 0, ["g"]) == [(ErrorCode.GROUP_AUTHORIZATION_FAILED, "")]
    assert _find(refused, 6, 2, [SHARE_KEY]) == [(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.")]


def test_describe_configs_answers_a_topic_with_no_message(client: _Client) -> None:
    """ConfigHelper builds both results without a message: the generated default ""."""
    answer = client.call(ApiKey.DESCRIBE_CONFIGS, 4, {"include_synonyms": False, "include_documentation": False, "resources": [
        {"resource_type": 2, "resource_name": "worded", "configuration_keys": ["retention.ms"]},
        {"resource_type": 2, "resource_name": "absent", "configuration_keys": None}]})
    assert [(r["error_code"], r["error_message"]) for r in answer["results"]] == [(ErrorCode.NONE, ""), (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "")]


def test_describe_client_quotas_messages(client: _Client, refused: _Client) -> None:
    """Success: "" (ClientQuotasImage.describe); refused: null (ApiError.fromThrowable drops the default words)."""
    body = {"components": [], "strict": False}
    answer = client.call(ApiKey.DESCRIBE_CLIENT_QUOTAS, 1, body)
    assert (answer["error_code"], answer["error_message"]) == (ErrorCode.NONE, "")
    answer = refused.call(ApiKey.DESCRIBE_CLIENT_QUOTAS, 1, body)
    assert (answer["error_code"], answer["error_message"]) == (ErrorCode.CLUSTER_AUTHORIZATION_FAILED, None)


def test_alter_client_quotas_prints_a_default_entity_as_java_does(client: _Client) -> None:
    entry = {"entity": [{"entity_type": "client-id", "entity_name": None}], "ops": [{"key": "producer_byte_rate", "value": 1000.0, "remove": False}]}
    answer = client.call(ApiKey.ALTER_CLIENT_QUOTAS, 1, {"validate_only": True, "entries": [entry, entry]})
    assert {(e["error_code"], e["error_message"]) for e in answer["entries"]} == {
        (ErrorCode.INVALID_REQUEST, "Ignoring duplicate entity ClientQuotaEntity(entries={client-id=null})")}


RETENTION_ABC = "Invalid value abc for configuration retention.ms: Not a number of type LONG"


@pytest.mark.parametrize("configs, message", [
    # LogConfigDef.parse in definition order: retention.ms before cleanup.policy and min.insync.replicas.
    ({"min.insync.replicas": "x", "cleanup.policy": "bad", "retention.ms": "abc"}, RETENTION_ABC),
    # LogConfig.validateNames before any value.
    ({"retention.ms": "abc", "nope.config": "1"}, "Unknown topic config name: nope.config"),
    # ControllerConfigurationValidator: null values before names, all of them named.
    ({"nope.config": "1", "retention.ms": None, "segment.ms": None}, "Null value not supported for topic configs: retention.ms,segment.ms"),
])
def test_topic_configs_are_refused_in_kafkas_order(client: _Client, configs: dict[str, str | None], message: str) -> None:
    created = client.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 10_000, "validate_only": True, "topics": [
        {"name": "ordered", "num_partitions": 1, "replication_factor": 1, "assignments": [],
         "configs": [{"name": name, "value": value} for name, value in configs.items()]}]})
    assert (created["topics"][0]["error_code"], created["topics"][0]["error_message"]) == (ErrorCode.INVALID_CONFIG, message)
    if None in configs.values():
        return  # the alter paths refuse null values before the controller (ConfigAdminManager)
    altered = client.call(ApiKey.ALTER_CONFIGS, 2, {"validate_only": True, "resources": [
        {"resource_type": 2, "resource_name": "worded", "configs": [{"name": name, "value": value} for name, value in configs.items()]}]})
    assert (altered["responses"][0]["error_code"], altered["responses"][0]["error_message"]) == (ErrorCode.INVALID_CONFIG, message)
    incremental = client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": True, "resources": [
        {"resource_type": 2, "resource_name": "worded", "configs": [
            {"name": name, "config_operation": 0, "value": value} for name, value in configs.items()]}]})
    assert (incremental["responses"][0]["error_code"], incremental["responses"][0]["error_message"]) == (ErrorCode.INVALID_CONFIG, message)


def test_create_partitions_over_the_request_limit(client: _Client) -> None:
    """ReplicationControlManager.validateTotalNumberOfPartitions: over 10,000 new partitions."""
    answer = client.call(ApiKey.CREATE_PARTITIONS, 3, {"timeout_ms": 10_000, "validate_only": True, "topics": [
        {"name": "worded", "count": 10_002, "assignments": None}]})
    assert [(r["error_code"], r["error_message"]) for r in answer["results"]] == [
        (ErrorCode.POLICY_VIOLATION, "Excessively large number of additional partitions per request.")]


def test_cancelling_no_reassignment_has_a_null_message(client: _Client) -> None:
    """NoReassignmentInProgressException carries the error's default words, which
    ApiError.fromThrowable drops."""
    answer = client.call(ApiKey.ALTER_PARTITION_REASSIGNMENTS, 0, {"timeout_ms": 10_000, "topics": [
        {"name": "worded", "partitions": [{"partition_index": 0, "replicas": None}]}]})
    assert [(p["error_code"], p["error_message"]) for p in answer["responses"][0]["partitions"]] == [(ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, None)]
