"""When a broker refuses the KIP-848 consumer protocol, over a real socket, each answer the one
the reference Kafka 4.4 gives (asked of it with the same requests):

- `group.version` finalized at 0: ConsumerGroupHeartbeat and ConsumerGroupDescribe stay in
  ApiVersions, but every request is answered UNSUPPORTED_VERSION;
- a consumer-protocol member committing with OffsetCommit below v9 gets UNSUPPORTED_VERSION
  for each partition (ConsumerGroup.validateOffsetCommit), while v9 commits."""

from __future__ import annotations

import time
import uuid
from typing import Any

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_features import Client

SAFE_DOWNGRADE = 2


def _join(client: Client, group: str, topic: str) -> dict[str, Any]:
    return client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, {
        "group_id": group, "member_id": str(uuid.uuid4()), "member_epoch": 0, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": 30_000, "subscribed_topic_names": [topic], "server_assignor": None, "topic_partitions": [],
    })


def test_group_version_0_keeps_the_apis_advertised_but_refuses_them() -> None:
    with running_broker(data_dir=None) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            assert _join(client, "before", "t")["error_code"] == ErrorCode.NONE
            update = client.call(ApiKey.UPDATE_FEATURES, 1, {"timeout_ms": 10_000, "validate_only": False, "feature_updates": [
                {"feature": "group.version", "max_version_level": 0, "upgrade_type": SAFE_DOWNGRADE}]})
            assert update["error_code"] == ErrorCode.NONE, update
            versions = client.call(ApiKey.API_VERSIONS, 3, {"client_software_name": "ottla-tests", "client_software_version": "1"})
            advertised = {key["api_key"] for key in versions["api_keys"]}
            assert {ApiKey.CONSUMER_GROUP_HEARTBEAT, ApiKey.CONSUMER_GROUP_DESCRIBE} <= advertised
            assert "group.version" not in {feature["name"] for feature in versions["finalized_features"]}
            heartbeat = _join(client, "after", "t")
            assert heartbeat == {"throttle_time_ms": 0, "error_code": ErrorCode.UNSUPPORTED_VERSION, "error_message": None,
                                 "member_id": None, "member_epoch": 0, "heartbeat_interval_ms": 0, "assignment": None}
            described = client.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 1, {"group_ids": ["before"], "include_authorized_operations": False})
            assert described["groups"] == [{"error_code": ErrorCode.UNSUPPORTED_VERSION, "error_message": None, "group_id": "before",
                                            "group_state": "", "group_epoch": 0, "assignment_epoch": 0, "assignor_name": "",
                                            "members": [], "authorized_operations": -(2**31)}]
        finally:
            client.close()


def test_a_consumer_protocol_member_commits_with_offset_commit_v9_or_later() -> None:
    with running_broker(data_dir=None) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            created = client.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": "oc", "num_partitions": 1, "replication_factor": 1,
                                                                        "assignments": [], "configs": []}], "timeout_ms": 10_000, "validate_only": False})
            assert created["topics"][0]["error_code"] == ErrorCode.NONE
            joined = _join(client, "gg", "oc")
            assert joined["error_code"] == ErrorCode.NONE

            def commit(version: int) -> int:
                answer = client.call(ApiKey.OFFSET_COMMIT, version, {
                    "group_id": "gg", "generation_id_or_member_epoch": joined["member_epoch"], "member_id": joined["member_id"],
                    "group_instance_id": None, "retention_time_ms": -1, "topics": [{"name": "oc", "partitions": [
                        {"partition_index": 0, "committed_offset": 0, "committed_leader_epoch": -1, "commit_timestamp": -1, "committed_metadata": ""}]}]})
                code: int = answer["topics"][0]["partitions"][0]["error_code"]
                return code

            assert [commit(version) for version in (2, 8, 9)] == [ErrorCode.UNSUPPORTED_VERSION, ErrorCode.UNSUPPORTED_VERSION, ErrorCode.NONE]
        finally:
            client.close()
