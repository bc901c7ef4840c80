"""FindCoordinator v6 share-partition keys (key type 2) in a cluster answer the leader of the
key's `__share_group_state` partition, as Kafka 4.4's KafkaApis.getCoordinator does with
ShareCoordinatorService.partitionFor: Utils.abs(asCoordinatorKey().hashCode()) % partitions,
over the key rendered again by SharePartitionKey. The expected partitions below were computed
by kafka-server-common-4.4.0.jar's SharePartitionKey. The first lookup creates the topic, as
Kafka's does (with share.coordinator.state.topic.num.partitions, 50: a fresh cluster then names
each key's partition's leader); here it is made with five partitions first."""

from __future__ import annotations

from typing import Any

from ottla.server.admin.client import KafkaClient
from ottla.testing import ThreadedBroker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

STATE_TOPIC = "__share_group_state"
# key -> its partition of a five-partition __share_group_state (from the real jar).
KEYS = {
    "g:AAAAAAAAAAAAAAAAAAAAAQ:0": 3,
    "g:AAAAAAAAAAAAAAAAAAAAAQ:1": 2,
    "g:AAAAAAAAAAAAAAAAAAAAAQ:+3": 0,
    "g:AAAAAAAAAAAAAAAAAAAAAQ:007": 1,
    "g:AAAAAAAAAAAAAAAAAAAAAR==:0": 3,
    "a:b:AAAAAAAAAAAAAAAAAAAAAQ:4": 0,
    "group-x:AAAAAAAAAAAAAAAAAAAAAQ:0:": 2,
}


def _find(client: KafkaClient, keys: list[str]) -> dict[str, Any]:
    version, answer = client.call(ApiKey.FIND_COORDINATOR, {"key_type": 2, "coordinator_keys": keys}, highest=6)
    assert version == 6
    return {found["key"]: found for found in answer["coordinators"]}


def test_share_keys_find_their_state_partition_leader(ottla_cluster: ThreadedBroker) -> None:
    with KafkaClient(ottla_cluster.bootstrap_servers) as client:
        ottla_cluster.create_topic(STATE_TOPIC, 5, 3)
        brokers = {broker["node_id"]: (broker["host"], broker["port"]) for broker in client.call(ApiKey.METADATA, {"topics": []})[1]["brokers"]}
        for shift in range(3):
            leaders = {partition: 1 + (partition + shift) % 3 for partition in range(5)}
            for partition, node in leaders.items():
                if ottla_cluster.leader_of(STATE_TOPIC, partition) != node:
                    ottla_cluster.move_leader(STATE_TOPIC, partition, node)
            found = _find(client, list(KEYS))
            for key, partition in KEYS.items():
                node = leaders[partition]
                assert (found[key]["error_code"], found[key]["node_id"], (found[key]["host"], found[key]["port"])) == (ErrorCode.NONE, node, brokers[node]), key


# key -> its partition of a fifty-partition __share_group_state (from the real jar).
KEYS_OF_50 = {
    "g:AAAAAAAAAAAAAAAAAAAAAQ:0": 23,
    "g:AAAAAAAAAAAAAAAAAAAAAQ:1": 22,
    "g:AAAAAAAAAAAAAAAAAAAAAQ:+3": 20,
    "g:AAAAAAAAAAAAAAAAAAAAAQ:007": 16,
    "g:AAAAAAAAAAAAAAAAAAAAAR==:0": 23,
    "a:b:AAAAAAAAAAAAAAAAAAAAAQ:4": 45,
    "group-x:AAAAAAAAAAAAAAAAAAAAAQ:0:": 2,
}


def test_the_first_share_key_lookup_creates_the_state_topic(ottla_cluster: ThreadedBroker) -> None:
    with KafkaClient(ottla_cluster.bootstrap_servers) as client:
        found = _find(client, list(KEYS_OF_50))
        leaders = {key: ottla_cluster.leader_of(STATE_TOPIC, partition) for key, partition in KEYS_OF_50.items()}
        assert set(leaders.values()) <= {1, 2, 3}
        assert {key: (answer["error_code"], answer["node_id"]) for key, answer in found.items()} == {key: (ErrorCode.NONE, leaders[key]) for key in KEYS_OF_50}
