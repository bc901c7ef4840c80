"""The coordinators' internal topics are created on first use, as Kafka 4.4 creates them: a
fresh broker lists no topic at all (the reference, compat.kafka.ReferenceKafka, lists none),
`__consumer_offsets` appears with the first FindCoordinator of a group (KafkaApis.getCoordinator
asks AutoTopicCreationManager for it) or the first group write, `__transaction_state` with the
first transactional producer's lookup, `__share_group_state` with the first share key's. Kafka
answers that first lookup COORDINATOR_NOT_AVAILABLE while its controller creates the topic;
Ottla creates it before answering and names the coordinator at once. Reads of the coordinators
(ListGroups, DescribeGroups, OffsetFetch, ListTransactions, DescribeTransactions) create nothing.
A real broker, real clients and raw requests over real sockets."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from kafka_wire import WireClient
from ottla.server.coordinator.log import CoordinatorLog, java_string_hash
from ottla.server.coordinator.topics import OFFSETS as OFFSETS_TOPIC_DEFINITION
from ottla.storage import Storage
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

OFFSETS, TRANSACTIONS, SHARE_STATE = "__consumer_offsets", "__transaction_state", "__share_group_state"
GROUP, TRANSACTION, SHARE = 0, 1, 2


class _Client(WireClient):
    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, client_id="internal-topics-first-use")

    def topics(self) -> list[str]:
        answer = self.call(ApiKey.METADATA, 12, {"topics": None, "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})
        return sorted(topic["name"] for topic in answer["topics"])

    def find(self, key_type: int, key: str) -> dict[str, Any]:
        (found,) = self.call(ApiKey.FIND_COORDINATOR, 6, {"key_type": key_type, "coordinator_keys": [key]})["coordinators"]
        return found

    def coordinator_reads(self) -> list[Any]:
        """What the coordinators answer to reads of a group and a transactional id nobody uses."""
        return [
            self.call(ApiKey.LIST_GROUPS, 5, {"states_filter": [], "types_filter": []}),
            self.call(ApiKey.DESCRIBE_GROUPS, 5, {"groups": ["nobody"], "include_authorized_operations": False}),
            self.call(ApiKey.OFFSET_FETCH, 9, {"groups": [{"group_id": "nobody", "member_id": None, "member_epoch": -1, "topics": None}], "require_stable": False}),
            self.call(ApiKey.LIST_TRANSACTIONS, 1, {"state_filters": [], "producer_id_filters": [], "duration_filter": -1}),
            self.call(ApiKey.DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": ["nobody"]}),
        ]


def _listed(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def _commit(bootstrap: str, group_id: str, topic: str, offset: int) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.commit({partition: OffsetAndMetadata(offset, "", -1)})
    finally:
        consumer.close()


def _committed(bootstrap: str, group_id: str) -> dict[TopicPartition, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {tp: meta.offset for tp, meta in admin.list_group_offsets(group_id)[group_id].items()}
    finally:
        admin.close()


def test_a_fresh_broker_lists_no_topics() -> None:
    with running_broker(data_dir=None) as broker:
        assert _listed(broker.bootstrap_servers) == set()


def test_a_group_commit_creates_the_offsets_topic() -> None:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("events", partitions=1)
        assert _listed(broker.bootstrap_servers) == {"events"}
        _commit(broker.bootstrap_servers, "committers", "events", 7)
        assert _listed(broker.bootstrap_servers) == {"events", OFFSETS}
        assert _committed(broker.bootstrap_servers, "committers") == {TopicPartition("events", 0): 7}


def test_a_transactional_producer_creates_the_transaction_state_topic() -> None:
    with running_broker(data_dir=None) as broker:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, transactional_id="first-use-txn")
        try:
            producer.init_transactions()
            assert _listed(broker.bootstrap_servers) == {TRANSACTIONS}
        finally:
            producer.close()


def test_each_coordinator_lookup_creates_its_topic_and_names_the_coordinator_at_once() -> None:
    """Each key type creates its own topic alone; a refused key creates nothing."""
    share_key = f"g:{base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b'=').decode()}:0"
    with running_broker(data_dir=None) as broker:
        client = _Client(broker.bootstrap_servers)
        try:
            assert client.find(SHARE, "not-a-share-key")["error_code"] == ErrorCode.INVALID_REQUEST
            assert client.topics() == []
            for key_type, key, created in ((GROUP, "g", [OFFSETS]), (TRANSACTION, "t", [OFFSETS, TRANSACTIONS]),
                                           (SHARE, share_key, [OFFSETS, SHARE_STATE, TRANSACTIONS])):
                found = client.find(key_type, key)
                assert (found["error_code"], found["node_id"]) == (ErrorCode.NONE, 1), found
                assert client.topics() == created
        finally:
            client.close()


def test_coordinator_reads_on_a_fresh_broker_create_nothing_and_answer_as_an_empty_coordinator() -> None:
    """Kafka 4.4 answers DescribeGroups, OffsetFetch and DescribeTransactions NOT_COORDINATOR
    until the key's topic exists (no partition leader yet); Ottla answers them as its empty
    coordinator does once the topic exists, which clients take as "nothing there"."""
    with running_broker(data_dir=None) as broker:
        client = _Client(broker.bootstrap_servers)
        try:
            before = client.coordinator_reads()
            assert client.topics() == []
            client.find(GROUP, "nobody")
            client.find(TRANSACTION, "nobody")
            assert client.topics() == [OFFSETS, TRANSACTIONS]
            assert client.coordinator_reads() == before
            assert before[0]["groups"] == [] and before[3]["transaction_states"] == []
        finally:
            client.close()


def test_a_restart_loads_the_internal_topics_it_finds_and_creates_none(tmp_path: Path) -> None:
    fresh, used = tmp_path / "fresh", tmp_path / "used"
    with running_broker(data_dir=str(fresh)) as broker:
        assert _listed(broker.bootstrap_servers) == set()
        broker.restart()
        assert _listed(broker.bootstrap_servers) == set()
        assert _committed(broker.bootstrap_servers, "nobody") == {}
    with running_broker(data_dir=str(used)) as broker:
        broker.create_topic("events", partitions=1)
        _commit(broker.bootstrap_servers, "committers", "events", 3)
        broker.restart()
        assert _listed(broker.bootstrap_servers) == {"events", OFFSETS}
        assert _committed(broker.bootstrap_servers, "committers") == {TopicPartition("events", 0): 3}


def test_a_cluster_places_the_offsets_topic_when_first_looked_up() -> None:
    """In a cluster the topic created by the first lookup is placed as a topic created at
    start-up would be (each partition on first use, replicated), and the lookup names the
    leader of the key's partition, where the group then commits."""
    with running_broker(data_dir=None, nodes=3) as cluster:
        client = _Client(cluster.bootstrap_servers)
        try:
            assert client.topics() == []
            found = client.find(GROUP, "spread")
            assert client.topics() == [OFFSETS]
            metadata = client.call(ApiKey.METADATA, 12, {"topics": [{"name": OFFSETS, "topic_id": bytes(16)}],
                                                         "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})
            (topic,) = metadata["topics"]
            partitions = {p["partition_index"]: p for p in topic["partitions"]}
            assert topic["is_internal"] and len(partitions) == 50
            assert all(len(p["replica_nodes"]) == 3 and p["leader_id"] in (1, 2, 3) for p in partitions.values())
            code = java_string_hash("spread")
            index = (0 if code == -(1 << 31) else abs(code)) % 50
            assert (found["error_code"], found["node_id"]) == (ErrorCode.NONE, partitions[index]["leader_id"])
        finally:
            client.close()
        cluster.create_topic("events", partitions=1, replication_factor=3)
        _commit(cluster.bootstrap_servers, "spread", "events", 5)
        assert _committed(cluster.bootstrap_servers, "spread") == {TopicPartition("events", 0): 5}


def test_a_keys_partition_is_the_same_before_and_after_its_topic_is_created() -> None:
    """Until the topic exists a key maps by the configured count, which creates it; once it
    exists, its own count rules whatever is configured, so a key's partition never moves."""
    storage = Storage.open(None)
    log_ = CoordinatorLog(storage, OFFSETS_TOPIC_DEFINITION, 7)
    assert storage.topic(OFFSETS) is None and list(log_.replay()) == []
    keys = [f"group-{i}" for i in range(40)]
    before = {key: log_.partition_for(key) for key in keys}
    log_.append("group-1", [(b"k", b"v")], 0)
    info = storage.topic(OFFSETS)
    assert info is not None and info.partitions == 7
    assert {key: log_.partition_for(key) for key in keys} == before
    assert {key: CoordinatorLog(storage, OFFSETS_TOPIC_DEFINITION, 3).partition_for(key) for key in keys} == before
    assert list(log_.replay()) == [(b"k", b"v")]


def test_a_topic_that_cannot_be_created_leaves_the_coordinator_not_available() -> None:
    """A topic whose name collides with `__consumer_offsets` keeps it from being created:
    every lookup is COORDINATOR_NOT_AVAILABLE (with Kafka 4.4's empty message), which clients
    retry, as Kafka answers while it has no topic, and the connection stays open."""
    with running_broker(data_dir=None) as broker:
        broker.create_topic("__consumer.offsets", partitions=1)
        client = _Client(broker.bootstrap_servers)
        try:
            for _ in range(2):
                found = client.find(GROUP, "g")
                assert (found["error_code"], found["node_id"], found["error_message"]) == (ErrorCode.COORDINATOR_NOT_AVAILABLE, -1, "")
            assert client.topics() == ["__consumer.offsets"]
        finally:
            client.close()


def test_a_metadata_request_allowed_to_create_an_internal_topic_creates_it_as_its_coordinator_would() -> None:
    """KafkaApis hands an internal name to AutoTopicCreationManager, which creates it with the
    coordinator's configs, and answers UNKNOWN_TOPIC_OR_PARTITION this time; a request not
    allowed to create leaves it missing."""
    with running_broker(data_dir=None) as broker:
        client = _Client(broker.bootstrap_servers)
        try:
            for allowed, listed in ((False, []), (True, [TRANSACTIONS])):
                answer = client.call(ApiKey.METADATA, 12, {"topics": [{"topic_id": bytes(16), "name": TRANSACTIONS}],
                                                           "allow_auto_topic_creation": allowed, "include_topic_authorized_operations": False})
                assert [(t["name"], t["error_code"]) for t in answer["topics"]] == [(TRANSACTIONS, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]
                assert client.topics() == listed
            configs = client.call(ApiKey.DESCRIBE_CONFIGS, 4, {"resources": [{"resource_type": 2, "resource_name": TRANSACTIONS,
                                                                             "configuration_keys": ["cleanup.policy"]}],
                                                              "include_synonyms": False, "include_documentation": False})
            assert [entry["value"] for entry in configs["results"][0]["configs"]] == ["compact"]
        finally:
            client.close()
