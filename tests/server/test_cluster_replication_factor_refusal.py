"""CreateTopics in a cluster refuses a replication factor above its brokers in Kafka 4.4's
words over a real socket: StripedReplicaPlacer.throwInvalidReplicationFactorIfTooFewBrokers,
prefixed by ReplicationControlManager.createTopic, as `kafka-topics --create` prints it."""

from __future__ import annotations

from ottla.server.admin.client import Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def test_a_factor_above_the_registered_brokers_is_refused_in_kafkas_words() -> None:
    with running_broker(nodes=3) as broker:
        host, port = broker.bootstrap_servers.split(",")[0].rsplit(":", 1)
        connection = Connection(host, int(port), 10.0, "cluster-replication-factor")
        try:
            answer = connection.request(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 10_000, "validate_only": False, "topics": [
                {"name": "too-many", "num_partitions": 1, "replication_factor": 4, "assignments": [], "configs": []}]})
        finally:
            connection.close()
        result = answer["topics"][0]
        assert (result["error_code"], result["error_message"]) == (
            ErrorCode.INVALID_REPLICATION_FACTOR,
            "Unable to replicate the partition 4 time(s): The target replication factor of 4 cannot be reached because only 3 "
            "broker(s) are registered or some brokers have all their log directories cordoned.")
