"""Over PostgreSQL the broker opens the internal topics at start-up (server/coordinator/database.py),
creating those missing with the configs Kafka 4.4 creates them with under the broker's settings:
segment.bytes from offsets.topic.segment.bytes, transaction.state.log.segment.bytes and
share.coordinator.state.topic.segment.bytes, min.insync.replicas from
transaction.state.log.min.isr and share.coordinator.state.topic.min.isr. The same configs as
the local engine's (tests/server/test_internal_topic_settings_s42.py), which the reference Kafka
lists under the same settings, but for `__share_group_state`'s cleanup.policy."""

from __future__ import annotations

from kafka_wire import WireClient
from test_postgres_topics import _serve

from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

DYNAMIC_TOPIC_CONFIG = 1
SETTINGS = (
    "offsets.topic.segment.bytes=2097152",
    "transaction.state.log.segment.bytes=3145728",
    "transaction.state.log.min.isr=2",
    "share.coordinator.state.topic.segment.bytes=4194304",
    "share.coordinator.state.topic.min.isr=3",
)
EXPECTED = {
    "__consumer_offsets": {"cleanup.policy": "compact", "compression.type": "producer", "segment.bytes": "2097152"},
    "__transaction_state": {"cleanup.policy": "compact", "compression.type": "uncompressed", "min.insync.replicas": "2",
                            "segment.bytes": "3145728", "unclean.leader.election.enable": "false"},
    "__share_group_state": {"cleanup.policy": "compact", "compression.type": "producer", "min.insync.replicas": "3",
                            "retention.ms": "-1", "segment.bytes": "4194304"},
}


def test_the_internal_topics_in_the_database_take_their_configs_from_the_broker_settings(postgres_url: str) -> None:
    with _serve(postgres_url, *SETTINGS) as (bootstrap, _):
        client = WireClient(bootstrap, client_id="internal-topic-settings")
        try:
            answer = client.call(ApiKey.DESCRIBE_CONFIGS, 4, {
                "resources": [{"resource_type": 2, "resource_name": name, "configuration_keys": None} for name in EXPECTED],
                "include_synonyms": False, "include_documentation": False})
            described = {}
            for result in answer["results"]:
                assert result["error_code"] == ErrorCode.NONE, result
                described[result["resource_name"]] = {
                    entry["name"]: entry["value"] for entry in result["configs"] if entry["config_source"] == DYNAMIC_TOPIC_CONFIG
                }
            assert described == EXPECTED
        finally:
            client.close()
