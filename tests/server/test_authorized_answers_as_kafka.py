"""What a restricted principal is answered under StandardAuthorizer, as Kafka 4.4 answers it:
differences `python -m compat.fuzz_differential --secured` found, each pinned here against a
broker set up as that run sets both up (compat.fuzz_differential.secured_settings: the
anonymous principal of PLAINTEXT a super user, FUZZER on SASL_PLAINTEXT with a few ACLs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kafka_wire import WireClient
from compat.differential import _Connection
from compat.fuzz_differential import FUZZ_USER, FUZZER, log_in_as_fuzz_user, secured_settings
from ottla.server.config import BrokerConfig
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

TOPIC, GROUP = 2, 3
LITERAL, PREFIXED = 3, 4
ALL, READ, DESCRIBE = 2, 3, 8
ALLOW = 3


class _Restricted(WireClient):
    """A connection logged in as FUZZER (SaslHandshake v1, SaslAuthenticate v2, PLAIN)."""

    def __init__(self, address: str) -> None:
        super().__init__(address, client_id="authorized-answers", timeout=30)
        log_in_as_fuzz_user(self.sock)


@pytest.fixture(scope="module")
def brokered() -> Iterator[tuple[_Connection, _Restricted]]:
    settings = secured_settings("127.0.0.1", 0, 0)
    config = BrokerConfig.from_settings({**settings, "data.dir": None, "num.partitions": "1"})
    with running_broker(config=config) as handle:
        assert handle.broker is not None and FUZZ_USER[0] == FUZZER
        admin = _Connection(handle.bootstrap_servers)
        created = admin.call(ApiKey.CREATE_TOPICS, 5, {"timeout_ms": 5000, "validate_only": False, "topics": [
            {"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []} for name in ("mine", "seen")]})
        assert not any(t["error_code"] for t in created["topics"]), created
        granted = admin.call(ApiKey.CREATE_ACLS, 3, {"creations": [
            {"resource_type": kind, "resource_name": name, "resource_pattern_type": pattern, "principal": f"User:{FUZZER}",
             "host": "*", "operation": operation, "permission_type": ALLOW}
            for kind, name, pattern, operation in ((TOPIC, "mine", LITERAL, ALL), (TOPIC, "seen", LITERAL, DESCRIBE),
                                                   (GROUP, "share-", PREFIXED, READ))]})
        assert not any(r["error_code"] for r in granted["results"]), granted
        restricted = _Restricted(f"127.0.0.1:{handle.broker.bound_ports['SASL_PLAINTEXT']}")
        yield admin, restricted
        restricted.sock.close()
        admin.close()


def test_alter_replica_log_dirs_refused_echoes_the_request_as_written(brokered):
    """AlterReplicaLogDirsRequest.getErrorResponse: a result per directory's topic, even one
    without partitions or named under two directories, each partition as listed."""
    _, restricted = brokered
    answer = restricted.call(ApiKey.ALTER_REPLICA_LOG_DIRS, 2, {"dirs": [
        {"path": "/nowhere", "topics": [{"name": "mine", "partitions": [0, 0]}, {"name": "seen", "partitions": []}]},
        {"path": "/elsewhere", "topics": [{"name": "mine", "partitions": [1]}]}]})
    refused = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    assert [(r["topic_name"], [(p["partition_index"], p["error_code"]) for p in r["partitions"]]) for r in answer["results"]] == [
        ("mine", [(0, refused), (0, refused)]), ("seen", []), ("mine", [(1, refused)])]


def test_offset_fetch_before_v2_refused_group_answers_each_partition_asked(brokered):
    """OffsetFetchResponse.groupError: v0 and v1 have no top-level error, so the request's
    topics as listed come back, each partition GROUP_AUTHORIZATION_FAILED with no offset."""
    _, restricted = brokered
    for version in (0, 1):
        answer = restricted.call(ApiKey.OFFSET_FETCH, version, {"group_id": "not-mine", "topics": [
            {"name": "mine", "partition_indexes": [0, 0]}, {"name": "nowhere", "partition_indexes": [3]}]})
        assert [(t["name"], [(p["partition_index"], p["committed_offset"], p["metadata"], p["error_code"]) for p in t["partitions"]])
                for t in answer["topics"]] == [
            ("mine", [(0, -1, "", ErrorCode.GROUP_AUTHORIZATION_FAILED)] * 2), ("nowhere", [(3, -1, "", ErrorCode.GROUP_AUTHORIZATION_FAILED)])], version


def test_list_partition_reassignments_refused_echoes_the_partitions_asked(brokered):
    """ListPartitionReassignmentsRequest.getErrorResponse: each partition asked, as listed."""
    _, restricted = brokered
    answer = restricted.call(ApiKey.LIST_PARTITION_REASSIGNMENTS, 0, {"timeout_ms": 30000, "topics": [
        {"name": "bad/name", "partition_indexes": [-1, -1]}, {"name": "mine", "partition_indexes": []}]})
    assert answer["error_code"] == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    assert answer["topics"] == [
        {"name": "bad/name", "partitions": [{"partition_index": -1, "replicas": [], "adding_replicas": [], "removing_replicas": []}] * 2},
        {"name": "mine", "partitions": []}]
    assert restricted.call(ApiKey.LIST_PARTITION_REASSIGNMENTS, 0, {"timeout_ms": 30000, "topics": None})["topics"] == []


def test_alter_share_group_offsets_refused_topic_keeps_its_id(brokered):
    """AlterShareGroupOffsetsResponse.Builder.addPartition names a refused topic by the id the
    metadata cache has for it (zero for a topic that does not exist)."""
    admin, restricted = brokered
    ids = {t["name"]: t["topic_id"] for t in admin.call(ApiKey.METADATA, 12, {
        "topics": [{"name": "seen", "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
        "include_topic_authorized_operations": False})["topics"]}
    answer = restricted.call(ApiKey.ALTER_SHARE_GROUP_OFFSETS, 0, {"group_id": "share-one", "topics": [
        {"topic_name": "seen", "partitions": [{"partition_index": 0, "start_offset": 0}]},
        {"topic_name": "nowhere", "partitions": [{"partition_index": 0, "start_offset": 0}]}]})
    assert answer["error_code"] == ErrorCode.NONE, answer
    assert {r["topic_name"]: (r["topic_id"], [p["error_code"] for p in r["partitions"]]) for r in answer["responses"]} == {
        "seen": (ids["seen"], [ErrorCode.TOPIC_AUTHORIZATION_FAILED]), "nowhere": (bytes(16), [ErrorCode.TOPIC_AUTHORIZATION_FAILED])}


def test_refusals_worded_by_the_errors_default_or_not_at_all(brokered):
    """DescribeUserScramCredentials: ApiError.fromThrowable drops Errors.exception()'s default
    message (null, top level and per user); DescribeQuorum v2: DescribeQuorumResponse carries it."""
    _, restricted = brokered
    scram = restricted.call(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, {"users": [{"name": "alice"}]})
    assert (scram["error_code"], scram["error_message"]) == (ErrorCode.CLUSTER_AUTHORIZATION_FAILED, None)
    assert [(r["error_code"], r["error_message"]) for r in scram["results"]] == [(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, None)]
    quorum = restricted.call(ApiKey.DESCRIBE_QUORUM, 2, {"topics": [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]})
    assert (quorum["error_code"], quorum["error_message"]) == (ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.")
