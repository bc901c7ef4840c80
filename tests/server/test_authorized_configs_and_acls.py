"""Refusals of the config, topic-creation and ACL APIs to a restricted principal under
StandardAuthorizer, as Kafka 4.4 answers them (found by `python -m compat.fuzz_differential
--secured`): which check comes first and the message each refusal carries. The broker is set
up as that run sets both up (compat.fuzz_differential.secured_settings)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from kafka_wire import WireClient
from compat.differential import _Connection
from compat.fuzz_differential import FUZZER, log_in_as_fuzz_user, secured_settings
from ottla.server.config import BrokerConfig
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

TOPIC_RESOURCE, LITERAL, ALL, ALLOW = 2, 3, 2, 3
# ConfigResource.Type ids (3, the ACL code of a group, is none).
UNKNOWN, ANY, TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP = 0, 1, 2, 4, 8, 16, 32


class _Restricted(WireClient):
    """A connection logged in as FUZZER (SaslHandshake v1, SaslAuthenticate v2, PLAIN)."""

    def __init__(self, address: str) -> None:
        super().__init__(address, client_id="authorized-configs", timeout=30)
        log_in_as_fuzz_user(self.sock)


@pytest.fixture(scope="module")
def restricted() -> Iterator[_Restricted]:
    """FUZZER may do anything on the topic "mine" and nothing else."""
    settings = secured_settings("127.0.0.1", 0, 0)
    config = BrokerConfig.from_settings({**settings, "data.dir": None, "num.partitions": "1"})
    with running_broker(config=config) as handle:
        assert handle.broker is not None
        admin = _Connection(handle.bootstrap_servers)
        created = admin.call(ApiKey.CREATE_TOPICS, 5, {"timeout_ms": 5000, "validate_only": False, "topics": [
            {"name": "mine", "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}]})
        assert not any(t["error_code"] for t in created["topics"]), created
        granted = admin.call(ApiKey.CREATE_ACLS, 3, {"creations": [
            {"resource_type": TOPIC_RESOURCE, "resource_name": "mine", "resource_pattern_type": LITERAL, "principal": f"User:{FUZZER}",
             "host": "*", "operation": ALL, "permission_type": ALLOW}]})
        assert not any(r["error_code"] for r in granted["results"]), granted
        connection = _Restricted(f"127.0.0.1:{handle.broker.bound_ports['SASL_PLAINTEXT']}")
        yield connection
        connection.sock.close()
        admin.close()


def _answers(response: dict[str, Any]) -> list[tuple[int, str, int, str | None]]:
    return [(r["resource_type"], r["resource_name"], r["error_code"], r["error_message"]) for r in response["responses"]]


def test_alter_configs_refuses_a_type_it_does_not_alter_before_authorizing(restricted):
    """ConfigAdminManager.preprocess (legacy): a type other than TOPIC, BROKER, CLIENT_METRICS
    and GROUP, BROKER_LOGGER too, is "Unknown resource type N" whoever asks; a refused BROKER is
    a ClusterAuthorizationException of the default words there, which ApiError.fromThrowable
    drops (null); a refused topic is the controller's ApiError(TOPIC_AUTHORIZATION_FAILED),
    worded."""
    resources = [(BROKER_LOGGER, "1"), (UNKNOWN, "x"), (ANY, "x"), (3, "x"), (99, "x"), (BROKER, ""), (TOPIC, "other")]
    for version in (0, 1, 2):
        answer = restricted.call(ApiKey.ALTER_CONFIGS, version, {"validate_only": True, "resources": [
            {"resource_type": kind, "resource_name": name, "configs": [{"name": "retention.ms", "value": "1000"}]} for kind, name in resources]})
        assert _answers(answer) == [
            *((kind, name, ErrorCode.INVALID_REQUEST, f"Unknown resource type {kind}") for kind, name in resources[:5]),
            (BROKER, "", ErrorCode.CLUSTER_AUTHORIZATION_FAILED, None),
            (TOPIC, "other", ErrorCode.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed."),
        ], version


def test_incremental_alter_configs_refusals_are_worded_as_kafka_words_them(restricted):
    """The broker's preprocess refuses BROKER and BROKER_LOGGER (message null, as above); the
    controller's ControllerApis.authorizeAlterResource the others, with the error's words; a
    type Kafka has no configs of is "Unknown resource type N" first."""
    resources = [(BROKER, "1"), (BROKER_LOGGER, "1"), (TOPIC, "other"), (GROUP, "g"), (CLIENT_METRICS, "m"), (ANY, "x")]
    answer = restricted.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": True, "resources": [
        {"resource_type": kind, "resource_name": name, "configs": [{"name": "a.b", "config_operation": 0, "value": "1"}]}
        for kind, name in resources]})
    assert _answers(answer) == [
        (BROKER, "1", ErrorCode.CLUSTER_AUTHORIZATION_FAILED, None),
        (BROKER_LOGGER, "1", ErrorCode.CLUSTER_AUTHORIZATION_FAILED, None),
        (TOPIC, "other", ErrorCode.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed."),
        (GROUP, "g", ErrorCode.GROUP_AUTHORIZATION_FAILED, "Group authorization failed."),
        (CLIENT_METRICS, "m", ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed."),
        (ANY, "x", ErrorCode.INVALID_REQUEST, "Unknown resource type 1"),
    ]


def test_describe_configs_refusals_carry_the_errors_words(restricted):
    """ConfigHelper.handleDescribeConfigsRequest sets Errors.message on each refused resource."""
    answer = restricted.call(ApiKey.DESCRIBE_CONFIGS, 4, {"include_synonyms": False, "include_documentation": False, "resources": [
        {"resource_type": kind, "resource_name": name, "configuration_keys": None}
        for kind, name in ((BROKER, "1"), (BROKER_LOGGER, "1"), (TOPIC, "other"))]})
    assert sorted((r["resource_type"], r["error_code"], r["error_message"]) for r in answer["results"]) == [
        (TOPIC, ErrorCode.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed."),
        (BROKER, ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed."),
        (BROKER_LOGGER, ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed."),
    ]


def test_create_topics_counts_partitions_only_of_the_topics_passed_to_the_controller(restricted):
    """ControllerApis.createTopics drops refused and duplicated names from what the controller
    gets, so ReplicationControlManager.validateTotalNumberOfPartitions (10,000 per request) does
    not count theirs: each is answered as refused, not POLICY_VIOLATION."""
    answer = restricted.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": True, "topics": [
        {"name": name, "num_partitions": partitions, "replication_factor": -1, "assignments": [], "configs": []}
        for name, partitions in (("other", 1048576), ("mine", 1), ("twice", 20000), ("twice", 20000))]})
    assert [(t["name"], t["error_code"], t["error_message"]) for t in answer["topics"]] == [
        ("mine", ErrorCode.TOPIC_ALREADY_EXISTS, "Topic 'mine' already exists."),
        ("twice", ErrorCode.INVALID_REQUEST, "Duplicate topic name."),
        ("other", ErrorCode.TOPIC_AUTHORIZATION_FAILED, "Authorization failed."),
    ]


def test_acl_refusals_name_the_request_and_the_permission_it_needs(restricted):
    """AuthHelper.authorizeClusterOperation: "Request <request> needs <OPERATION> permission.",
    kept whole by each request's getErrorResponse."""

    def needs(operation: str) -> re.Pattern[str]:
        return re.compile(rf"Request Request\(processor=.*\) needs {operation} permission\.")

    described = restricted.call(ApiKey.DESCRIBE_ACLS, 3, {
        "resource_type_filter": 1, "resource_name_filter": None, "pattern_type_filter": 1, "principal_filter": None,
        "host_filter": None, "operation": 1, "permission_type": 1})
    assert described["error_code"] == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    assert needs("DESCRIBE").fullmatch(described["error_message"]), described["error_message"]
    created = restricted.call(ApiKey.CREATE_ACLS, 3, {"creations": [
        {"resource_type": TOPIC_RESOURCE, "resource_name": "x", "resource_pattern_type": LITERAL, "principal": "User:x",
         "host": "*", "operation": ALL, "permission_type": ALLOW}]})
    deleted = restricted.call(ApiKey.DELETE_ACLS, 3, {"filters": [
        {"resource_type_filter": 1, "resource_name_filter": None, "pattern_type_filter": 1, "principal_filter": None,
         "host_filter": None, "operation": 1, "permission_type": 1}]})
    for result in created["results"] + deleted["filter_results"]:
        assert result["error_code"] == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        assert needs("ALTER").fullmatch(result["error_message"]), result["error_message"]

