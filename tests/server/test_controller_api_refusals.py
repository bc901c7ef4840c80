"""The controller APIs' refusals under StandardAuthorizer, worded as the reference Kafka 4.4
words them: AuthHelper.authorizeClusterOperation's "Request <request> needs <OPERATION>
permission." (server/security/refusals.py), in the field each request's getErrorResponse puts
it; AddRaftVoter and RemoveRaftVoter word it by the error's default. And UpdateFeatures in a
cluster names the active controller, which runs the update, whichever node was asked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from kafka_wire import WireClient
from ottla.server.features import UpgradeType
from ottla.server.security.authorizer import STANDARD_AUTHORIZER
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

REFUSED = ErrorCode.CLUSTER_AUTHORIZATION_FAILED


def _needs(operation: str) -> re.Pattern[str]:
    return re.compile(
        rf"Request Request\(processor=0, connectionId=127\.0\.0\.1:\d+-127\.0\.0\.1:\d+-0, session=Session\(User:ANONYMOUS,/127\.0\.0\.1\), "
        rf"listenerName=ListenerName\(PLAINTEXT\), securityProtocol=PLAINTEXT, buffer=null, envelope=Optional\.empty\) needs {operation} permission\.")


@pytest.fixture(scope="module")
def refused() -> Iterator[WireClient]:
    """A connection whose principal (ANONYMOUS) has no ACL at all."""
    with running_broker(data_dir=None, authorizer_class_name=STANDARD_AUTHORIZER) as broker:
        client = WireClient(broker.bootstrap_servers, client_id="controller-refusals")
        try:
            yield client
        finally:
            client.close()


def test_elect_leaders_words_each_partition(refused: WireClient) -> None:
    answer = refused.call(ApiKey.ELECT_LEADERS, 2, {"election_type": 0, "timeout_ms": 5000, "topic_partitions": [{"topic": "t", "partitions": [0, 1]}]})
    assert answer["error_code"] == REFUSED
    results = answer["replica_election_results"][0]["partition_result"]
    assert [p["error_code"] for p in results] == [REFUSED, REFUSED]
    assert all(_needs("ALTER").fullmatch(p["error_message"]) for p in results), results


def test_alter_partition_reassignments_words_the_request_and_each_partition(refused: WireClient) -> None:
    answer = refused.call(ApiKey.ALTER_PARTITION_REASSIGNMENTS, 1, {"timeout_ms": 5000, "allow_replication_factor_change": True, "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "replicas": [1]}]}]})
    assert answer["error_code"] == REFUSED and _needs("ALTER").fullmatch(answer["error_message"]), answer
    (partition,) = answer["responses"][0]["partitions"]
    assert partition["error_code"] == REFUSED and _needs("ALTER").fullmatch(partition["error_message"]), partition


@pytest.mark.parametrize(("api", "version", "body", "operation"), [
    (ApiKey.LIST_PARTITION_REASSIGNMENTS, 0, {"timeout_ms": 5000, "topics": None}, "DESCRIBE"),
    (ApiKey.UPDATE_FEATURES, 1, {"timeout_ms": 5000, "feature_updates": [{"feature": "x", "max_version_level": 1, "upgrade_type": 1}],
                                 "validate_only": False}, "ALTER"),
    (ApiKey.UNREGISTER_BROKER, 0, {"broker_id": 7}, "ALTER"),
    (ApiKey.UNREGISTER_CONTROLLER, 0, {"controller_id": 7}, "ALTER"),
])
def test_top_level_refusals_name_the_request(refused: WireClient, api: ApiKey, version: int, body: dict[str, Any], operation: str) -> None:
    answer = refused.call(api, version, body)
    assert answer["error_code"] == REFUSED and _needs(operation).fullmatch(answer["error_message"]), answer


def test_alter_user_scram_credentials_words_each_user(refused: WireClient) -> None:
    answer = refused.call(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, {"deletions": [{"name": "u", "mechanism": 1}], "upsertions": []})
    (result,) = answer["results"]
    assert result["error_code"] == REFUSED and _needs("ALTER").fullmatch(result["error_message"]), result


def test_raft_voter_refusals_carry_the_errors_default_words(refused: WireClient) -> None:
    added = refused.call(ApiKey.ADD_RAFT_VOTER, 0, {"cluster_id": None, "timeout_ms": 5000, "voter_id": 5, "voter_directory_id": bytes(16), "listeners": []})
    removed = refused.call(ApiKey.REMOVE_RAFT_VOTER, 0, {"cluster_id": None, "voter_id": 5, "voter_directory_id": bytes(16)})
    for answer in (added, removed):
        assert (answer["error_code"], answer["error_message"]) == (REFUSED, "Cluster authorization failed.")


def test_update_features_in_a_cluster_names_the_active_controller() -> None:
    """Asked of node 3, the update is refused by the active controller (node 1), as
    DescribeQuorum names it."""
    with running_broker(nodes=3, data_dir=None) as cluster:
        client = WireClient(cluster.bootstrap_servers.split(",")[2], client_id="controller-refusals")
        try:
            quorum = client.call(ApiKey.DESCRIBE_QUORUM, 2, {"topics": [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]})
            leader = quorum["topics"][0]["partitions"][0]["leader_id"]
            assert leader == 1
            answer = client.call(ApiKey.UPDATE_FEATURES, 1, {"timeout_ms": 5000, "validate_only": True, "feature_updates": [
                {"feature": "no.such", "max_version_level": 1, "upgrade_type": UpgradeType.UPGRADE}]})
        finally:
            client.close()
    assert (answer["error_code"], answer["error_message"]) == (
        ErrorCode.INVALID_UPDATE_VERSION, "The update failed for all features since the following feature had an error: "
        f"Invalid update version 1 for feature no.such. Local controller {leader} does not support this feature.")
