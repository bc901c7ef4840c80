"""The internal topics' configs that Kafka 4.4 takes from broker settings when it creates them,
as DescribeConfigs lists them over a real socket with those settings overridden: segment.bytes
from offsets.topic.segment.bytes, transaction.state.log.segment.bytes and
share.coordinator.state.topic.segment.bytes, min.insync.replicas from
transaction.state.log.min.isr and share.coordinator.state.topic.min.isr (none on the offsets
topic). The expected configs are what the reference Kafka 4.4 lists under the same settings
(GroupCoordinatorService.groupMetadataTopicConfigs, TransactionCoordinator.transactionStateTopicConfigs,
ShareCoordinatorService.shareGroupStateTopicConfigs), but for `__share_group_state`'s
cleanup.policy, compact on Ottla (see test_internal_topic_configs.py)."""

from __future__ import annotations

import base64
import time
import uuid

from kafka_wire import WireClient
from share_member import ShareMember
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

DYNAMIC_TOPIC_CONFIG = 1
GROUP, TRANSACTION, SHARE = 0, 1, 2
SETTINGS = {
    "offsets_topic_segment_bytes": "2097152",
    "transaction_state_log_segment_bytes": "3145728",
    "transaction_state_log_min_isr": "2",
    "share_coordinator_state_topic_segment_bytes": "4194304",
    "share_coordinator_state_topic_min_isr": "3",
}
EXPECTED = {
    "__consumer_offsets": {"cleanup.policy": "compact", "compression.type": "producer", "segment.bytes": "2097152"},
    "__transaction_state": {"cleanup.policy": "compact", "compression.type": "uncompressed", "min.insync.replicas": "2",
                            "segment.bytes": "3145728", "unclean.leader.election.enable": "false"},
    "__share_group_state": {"cleanup.policy": "compact", "compression.type": "producer", "min.insync.replicas": "3",
                            "retention.ms": "-1", "segment.bytes": "4194304"},
}


def _find_coordinator(client: WireClient, key_type: int, key: str) -> None:
    """FindCoordinator until it names one: the coordinator's topic exists then."""
    version = 6 if key_type == SHARE else 4
    for attempt in range(100):
        time.sleep(0.1 if attempt else 0)
        answer = client.call(ApiKey.FIND_COORDINATOR, version, {"key_type": key_type, "coordinator_keys": [key]})
        if answer["coordinators"][0]["error_code"] == ErrorCode.NONE:
            return
    raise AssertionError(f"no coordinator for {key!r}: {answer}")


def _topic_configs(client: WireClient, topic: str) -> dict[str, str | None]:
    """The topic's own configs (DYNAMIC_TOPIC_CONFIG), by name."""
    answer = client.call(ApiKey.DESCRIBE_CONFIGS, 4, {"resources": [{"resource_type": 2, "resource_name": topic, "configuration_keys": None}],
                                                      "include_synonyms": False, "include_documentation": False})
    (result,) = answer["results"]
    assert result["error_code"] == ErrorCode.NONE, result
    return {entry["name"]: entry["value"] for entry in result["configs"] if entry["config_source"] == DYNAMIC_TOPIC_CONFIG}


def test_lookups_create_the_internal_topics_with_configs_from_the_broker_settings() -> None:
    """FindCoordinator creates each topic (a share key creates `__share_group_state`, as a
    broker's share-state lookup does on Kafka)."""
    with running_broker(data_dir=None, **SETTINGS) as broker:
        client = WireClient(broker.bootstrap_servers, client_id="internal-topic-settings")
        try:
            _find_coordinator(client, GROUP, "settings-group")
            _find_coordinator(client, TRANSACTION, "settings-txn")
            topic_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            _find_coordinator(client, SHARE, f"settings-share:{topic_id}:0")
            assert {name: _topic_configs(client, name) for name in EXPECTED} == EXPECTED
        finally:
            client.close()


def test_coordinators_create_their_topics_with_configs_from_the_broker_settings() -> None:
    """The coordinators' first writes create each topic: an offset commit, a transactional
    producer's id, a share group's state."""
    with running_broker(data_dir=None, **SETTINGS) as broker:
        client = WireClient(broker.bootstrap_servers, client_id="internal-topic-settings")
        member = ShareMember(broker)
        try:
            broker.create_topic("settings-topic", partitions=1)
            committed = client.call(ApiKey.OFFSET_COMMIT, 2, {
                "group_id": "settings-group", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": -1,
                "topics": [{"name": "settings-topic", "partitions": [{"partition_index": 0, "committed_offset": 7, "committed_metadata": ""}]}]})
            assert committed["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
            initialized = client.call(ApiKey.INIT_PRODUCER_ID, 5, {"transactional_id": "settings-txn", "transaction_timeout_ms": 60_000,
                                                                   "producer_id": -1, "producer_epoch": -1})
            assert initialized["error_code"] == ErrorCode.NONE
            assert member.join_until_assigned("settings-share", ["settings-topic"])
            assert {name: _topic_configs(client, name) for name in EXPECTED} == EXPECTED
        finally:
            member.close()
            client.close()
