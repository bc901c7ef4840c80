"""The topic-level configs of the internal topics, as DescribeConfigs lists them over a real
socket: each coordinator creates its topic with Kafka 4.4's own (DYNAMIC_TOPIC_CONFIG), so
`kafka-configs --describe` shows on Ottla what it shows on Kafka.

Kafka 4.4 (GroupCoordinatorService.groupMetadataTopicConfigs,
TransactionCoordinator.transactionStateTopicConfigs,
ShareCoordinatorService.shareGroupStateTopicConfigs), as the reference broker lists them.
One known divergence is pinned here: `__share_group_state` stays compacted where Kafka's is
cleanup.policy=delete, pruned by a share coordinator Ottla does not have. The configs taken
from broker settings, overridden, are in test_internal_topic_settings_s42.py."""

from __future__ import annotations

import time

from kafka_wire import WireClient
from share_member import ShareMember
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Compression, scan_batches

DYNAMIC_TOPIC_CONFIG = 1
GROUP, TRANSACTION = 0, 1
SEGMENT_BYTES = "104857600"


class _Client(WireClient):
    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, client_id="internal-topic-configs")

    def find_coordinator(self, key_type: int, key: str) -> None:
        """FindCoordinator until it names one: the coordinator's topic exists then."""
        for attempt in range(100):
            time.sleep(0.1 if attempt else 0)
            answer = self.call(ApiKey.FIND_COORDINATOR, 4, {"key_type": key_type, "coordinator_keys": [key]})
            if answer["coordinators"][0]["error_code"] == ErrorCode.NONE:
                return
        raise AssertionError(f"no coordinator for {key!r}: {answer}")

    def topic_configs(self, topic: str) -> dict[str, str | None]:
        """The topic's own configs (DYNAMIC_TOPIC_CONFIG), by name."""
        answer = self.call(ApiKey.DESCRIBE_CONFIGS, 4, {"resources": [{"resource_type": 2, "resource_name": topic, "configuration_keys": None}],
                                                        "include_synonyms": False, "include_documentation": False})
        (result,) = answer["results"]
        assert result["error_code"] == ErrorCode.NONE, result
        return {entry["name"]: entry["value"] for entry in result["configs"] if entry["config_source"] == DYNAMIC_TOPIC_CONFIG}


def test_each_internal_topic_is_created_with_kafkas_topic_configs() -> None:
    with running_broker(data_dir=None) as broker:
        client = _Client(broker.bootstrap_servers)
        member = ShareMember(broker)
        try:
            client.find_coordinator(GROUP, "configs-group")
            assert client.topic_configs("__consumer_offsets") == {"cleanup.policy": "compact", "compression.type": "producer", "segment.bytes": SEGMENT_BYTES}
            client.find_coordinator(TRANSACTION, "configs-txn")
            assert client.topic_configs("__transaction_state") == {
                "cleanup.policy": "compact", "compression.type": "uncompressed", "min.insync.replicas": "2", "segment.bytes": SEGMENT_BYTES,
                "unclean.leader.election.enable": "false",
            }
            broker.create_topic("shared", partitions=1)
            assert member.join_until_assigned("configs-share", ["shared"])
            assert client.topic_configs("__share_group_state") == {
                "cleanup.policy": "compact", "compression.type": "producer", "min.insync.replicas": "2", "retention.ms": "-1", "segment.bytes": SEGMENT_BYTES,
            }
        finally:
            member.close()
            client.sock.close()


def _codecs(client: _Client, topic: str, partition: int) -> list[Compression]:
    """The codec of each batch the partition holds."""
    answer = client.call(ApiKey.FETCH, 11, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
        "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
        "topics": [{"topic": topic, "partitions": [{"partition": partition, "current_leader_epoch": -1, "fetch_offset": 0,
                                                     "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}],
    })
    fetched = answer["responses"][0]["partitions"][0]
    assert fetched["error_code"] == ErrorCode.NONE, fetched
    return [header.compression for header, _ in scan_batches(fetched["records"] or b"")]


def test_a_broker_wide_compression_leaves_the_coordinators_batches_uncompressed() -> None:
    """The internal topics' own compression.type (producer, uncompressed) overrides the
    broker's, as on Kafka: an offset commit and a transactional id's state are stored as the
    coordinators write them, not recompressed in the broker's codec. One partition each, so
    that every key is in partition 0."""
    with running_broker(data_dir=None, compression_type="gzip", offsets_topic_num_partitions=1, transaction_state_log_num_partitions=1) as broker:
        client = _Client(broker.bootstrap_servers)
        try:
            broker.create_topic("committed", partitions=1)
            client.find_coordinator(GROUP, "gzip-group")
            committed = client.call(ApiKey.OFFSET_COMMIT, 2, {
                "group_id": "gzip-group", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": -1,
                "topics": [{"name": "committed", "partitions": [{"partition_index": 0, "committed_offset": 7, "committed_metadata": ""}]}]})
            assert committed["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
            client.find_coordinator(TRANSACTION, "gzip-txn")
            initialized = client.call(ApiKey.INIT_PRODUCER_ID, 5, {"transactional_id": "gzip-txn", "transaction_timeout_ms": 60_000,
                                                                   "producer_id": -1, "producer_epoch": -1})
            assert initialized["error_code"] == ErrorCode.NONE
            assert _codecs(client, "__consumer_offsets", 0) == [Compression.NONE]
            assert _codecs(client, "__transaction_state", 0) == [Compression.NONE]
        finally:
            client.sock.close()
