"""CreateTopics and CreatePartitions on a single node over a real socket: a replica assignment
or replication factor the one broker cannot honour is refused with Kafka 4.4's codes and words,
which `kafka-topics --create` and `--alter` print as they are.

ReplicationControlManager.validateManualPartitionAssignment walks each replica list's broker ids
in ascending order: an id of no registered broker, then the same id twice, are
INVALID_REPLICA_ASSIGNMENT; StripedReplicaPlacer refuses a replication factor above the
registered brokers, which createTopic prefixes with "Unable to replicate the partition N time(s)".
createPartitions checks each new partition's list the same way."""

from __future__ import annotations

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_features import Client


def _create(client: Client, name: str, *, partitions: int = -1, factor: int = -1, assignments: list[list[int]] | None = None) -> tuple[int, str | None]:
    topic = {"name": name, "num_partitions": partitions, "replication_factor": factor, "configs": [],
             "assignments": [{"partition_index": i, "broker_ids": ids} for i, ids in enumerate(assignments or [])]}
    answer = client.call(ApiKey.CREATE_TOPICS, 7, {"topics": [topic], "timeout_ms": 10_000, "validate_only": False})
    result = answer["topics"][0]
    return result["error_code"], result["error_message"]


def test_an_assignment_or_factor_the_one_broker_cannot_honour_is_refused_in_kafkas_words() -> None:
    with running_broker(data_dir=None) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            assert _create(client, "unknown-broker", assignments=[[1], [7, 1]]) == (
                ErrorCode.INVALID_REPLICATION_ASSIGNMENT, "The manual partition assignment includes broker 7, but no such broker is registered.")
            assert _create(client, "twice", assignments=[[1, 1]]) == (
                ErrorCode.INVALID_REPLICATION_ASSIGNMENT, "The manual partition assignment includes the broker 1 more than once.")
            assert _create(client, "too-many", partitions=1, factor=3) == (
                ErrorCode.INVALID_REPLICATION_FACTOR,
                "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 1 "
                "broker(s) are registered or some brokers have all their log directories cordoned.")
            assert _create(client, "placed", assignments=[[1], [1]]) == (ErrorCode.NONE, None)
            for ids, message in (([8, 7], "includes broker 7, but no such broker is registered."), ([1, 1], "includes the broker 1 more than once."),
                                 ([], "includes an empty replica list.")):
                grown = client.call(ApiKey.CREATE_PARTITIONS, 3, {"topics": [{"name": "placed", "count": 3, "assignments": [{"broker_ids": ids}]}],
                                                                  "timeout_ms": 10_000, "validate_only": False})
                result = grown["results"][0]
                assert (result["error_code"], result["error_message"]) == (
                    ErrorCode.INVALID_REPLICATION_ASSIGNMENT, f"The manual partition assignment {message}"), ids
        finally:
            client.close()
