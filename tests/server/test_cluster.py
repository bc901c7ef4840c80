"""Cluster mode over real sockets: three nodes in one process, asked directly (raw requests)
and through stock clients while leaders stop, come back and move."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from kafka import KafkaProducer
from kafka.errors import NotEnoughReplicasError

from ottla.server.admin.client import Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.protocol import encode_request
from ottla.wire.errors import ErrorCode
from ottla.wire.records.record import Record, build_batch

NOT_LEADER = ErrorCode.NOT_LEADER_FOR_PARTITION


@pytest.fixture
def cluster() -> Iterator[ThreadedBroker]:
    with running_broker(nodes=3, racks=("a", "b", "c"), data_dir=None, group_initial_rebalance_delay_ms=0) as broker:
        yield broker


def _addresses(cluster: ThreadedBroker) -> dict[int, tuple[str, int]]:
    return {node: (host, int(port)) for node, (host, port) in zip((1, 2, 3), (a.rsplit(":", 1) for a in cluster.bootstrap_servers.split(",")))}


def _connect(cluster: ThreadedBroker, node: int) -> Connection:
    host, port = _addresses(cluster)[node]
    return Connection(host, port, 10.0, "cluster-test")


def _produce(connection: Connection, topic: str, partition: int, value: bytes, acks: int = -1, version: int = 11) -> dict[str, Any]:
    batch = build_batch([Record(offset=0, timestamp=1_700_000_000_000, key=None, value=value, headers=())])
    body = {"transactional_id": None, "acks": acks, "timeout_ms": 5000,
            "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": batch}]}]}
    return connection.request(ApiKey.PRODUCE, version, body)


def test_metadata_through_each_node_names_every_node_and_the_same_leaders(cluster: ThreadedBroker) -> None:
    cluster.create_topic("spread", partitions=6, replication_factor=3)
    answers = []
    for node in (1, 2, 3):
        connection = _connect(cluster, node)
        metadata = connection.request(ApiKey.METADATA, 12, {"topics": [{"name": "spread", "topic_id": bytes(16)}], "allow_auto_topic_creation": False})
        connection.close()
        brokers = {(b["node_id"], b["host"], b["port"], b["rack"]) for b in metadata["brokers"]}
        partitions = [(p["partition_index"], p["leader_id"], tuple(p["replica_nodes"]), tuple(p["isr_nodes"])) for p in metadata["topics"][0]["partitions"]]
        answers.append((brokers, sorted(partitions)))
    assert answers[0] == answers[1] == answers[2]
    brokers, partitions = answers[0]
    assert {(node, rack) for node, _, _, rack in brokers} == {(1, "a"), (2, "b"), (3, "c")}
    assert {leader for _, leader, _, _ in partitions} == {1, 2, 3}  # leaders spread over the nodes
    assert all(len(set(replicas)) == 3 for _, _, replicas, _ in partitions)


def test_each_node_describes_its_own_id_and_rack(cluster: ThreadedBroker) -> None:
    """librdkafka's fetch-from-follower test reads each replica's broker.rack so, through that node."""
    described = {}
    for node in (1, 2, 3):
        connection = _connect(cluster, node)
        answer = connection.request(ApiKey.DESCRIBE_CONFIGS, 4, {
            "resources": [{"resource_type": 4, "resource_name": str(node), "configuration_keys": ["node.id", "broker.id", "broker.rack"]}],
            "include_synonyms": False, "include_documentation": False})
        connection.close()
        (result,) = answer["results"]
        assert result["error_code"] == ErrorCode.NONE, result
        described[node] = {entry["name"]: entry["value"] for entry in result["configs"]}
    assert described == {node: {"node.id": str(node), "broker.id": str(node), "broker.rack": rack} for node, rack in ((1, "a"), (2, "b"), (3, "c"))}


def test_a_node_that_does_not_lead_answers_not_leader_with_the_current_leader(cluster: ThreadedBroker) -> None:
    cluster.create_topic("hints", partitions=1, replication_factor=2)
    state = cluster.partition_state("hints", 0)
    follower = state["replicas"][1]
    outsider = ({1, 2, 3} - set(state["replicas"])).pop()
    connection = _connect(cluster, follower)
    answer = _produce(connection, "hints", 0, b"v")
    partition = answer["responses"][0]["partition_responses"][0]
    assert partition["error_code"] == NOT_LEADER
    # KIP-951: where the leader is, so the client need not ask Metadata first.
    assert partition["current_leader"] == {"leader_id": state["leader"], "leader_epoch": state["leader_epoch"]}
    host, port = _addresses(cluster)[state["leader"]]
    assert [(e["node_id"], e["host"], e["port"]) for e in answer["node_endpoints"]] == [(state["leader"], host, port)]
    connection.close()
    # A node holding no replica serves no fetch either; a follower serves a consumer (KIP-392).
    fetch = {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0, "session_epoch": -1,
             "topics": [{"topic": "hints", "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}],
             "forgotten_topics_data": [], "rack_id": ""}
    for node, expected in ((outsider, NOT_LEADER), (follower, ErrorCode.NONE)):
        connection = _connect(cluster, node)
        answered = connection.request(ApiKey.FETCH, 12, fetch)["responses"][0]["partitions"][0]
        connection.close()
        assert answered["error_code"] == expected
    assert answered["high_watermark"] == 0


def test_the_leader_sends_a_consumer_to_a_follower_in_its_rack() -> None:
    selector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
    with running_broker(nodes=3, racks=("a", "b", "c"), data_dir=None, replica_selector_class=selector) as cluster:
        cluster.create_topic("racks", partitions=1, replication_factor=3)
        state = cluster.partition_state("racks", 0)
        follower = state["replicas"][1]
        rack = "abc"[follower - 1]
        connection = _connect(cluster, state["leader"])
        _produce(connection, "racks", 0, b"v")
        fetch = {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0, "session_epoch": -1,
                 "topics": [{"topic": "racks", "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}],
                 "forgotten_topics_data": [], "rack_id": rack}
        answered = connection.request(ApiKey.FETCH, 11, fetch)["responses"][0]["partitions"][0]
        connection.close()
        assert (answered["preferred_read_replica"], answered["high_watermark"], bytes(answered["records"] or b"")) == (follower, 1, b"")


def test_a_fetch_with_a_partition_sent_to_another_replica_is_answered_at_once() -> None:
    """One partition of the fetch goes to a follower in the consumer's rack, another (on the
    leader alone) has nothing new: the leader answers at once, as Kafka's ReplicaManager, not
    after max_wait_ms, so that the consumer moves to the follower without waiting."""
    selector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
    with running_broker(nodes=3, racks=("a", "b", "c"), data_dir=None, replica_selector_class=selector) as cluster:
        cluster.create_topic("local", partitions=1, replication_factor=1)
        leader = cluster.partition_state("local", 0)["leader"]
        cluster.create_topic("racks", partitions=3, replication_factor=3)
        redirected = next(index for index in range(3) if cluster.partition_state("racks", index)["leader"] == leader)
        rack = "abc"[next(node for node in (1, 2, 3) if node != leader) - 1]
        connection = Connection(*_addresses(cluster)[leader], 60.0, "cluster-test")
        _produce(connection, "racks", redirected, b"v")

        def wanted(index: int) -> dict[str, int]:
            return {"partition": index, "fetch_offset": 0, "partition_max_bytes": 1 << 20}

        fetch = {"replica_id": -1, "max_wait_ms": 600_000, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
                 "session_epoch": -1, "topics": [{"topic": "racks", "partitions": [wanted(redirected)]}, {"topic": "local", "partitions": [wanted(0)]}],
                 "forgotten_topics_data": [], "rack_id": rack}
        answered = connection.request(ApiKey.FETCH, 11, fetch)["responses"]  # parked, it would wait ten minutes, past the socket's 60 s
        connection.close()
        assert answered[0]["partitions"][0]["preferred_read_replica"] != -1
        assert (answered[1]["partitions"][0]["error_code"], bytes(answered[1]["partitions"][0]["records"] or b"")) == (ErrorCode.NONE, b"")


def test_running_replicas_rejoin_the_isr_of_a_new_leader(cluster: ThreadedBroker) -> None:
    """Followers fetch from a new leader and rejoin its ISR within a round trip: a replica that
    was running while the partition had no leader is in the ISR once the leader returns, so
    acks=all with min.insync.replicas=2 works again."""
    cluster.create_topic("rejoin", partitions=1, replication_factor=3, min_insync_replicas=2)
    first, second, third = cluster.partition_state("rejoin", 0)["replicas"]
    for node in (second, third, first):
        cluster.stop_node(node)
    cluster.start_node(second)  # not in the ISR: no clean leader yet
    assert cluster.partition_state("rejoin", 0)["leader"] == -1
    cluster.start_node(first)
    state = cluster.partition_state("rejoin", 0)
    assert state["leader"] == first and set(state["isr"]) == {first, second}
    connection = _connect(cluster, first)
    assert _produce(connection, "rejoin", 0, b"v")["responses"][0]["partition_responses"][0]["error_code"] == ErrorCode.NONE
    connection.close()


def test_a_returning_node_leads_uncleanly_where_the_topic_allows_it(cluster: ThreadedBroker) -> None:
    cluster.create_topic("unclean", partitions=1, replication_factor=3, unclean_leader_election_enable="true")
    first, second, third = cluster.partition_state("unclean", 0)["replicas"]
    for node in (second, third, first):
        cluster.stop_node(node)
    cluster.start_node(second)
    assert cluster.partition_state("unclean", 0)["leader"] == second


def test_a_partition_too_few_nodes_can_place_has_no_leader_and_answers_for_it(cluster: ThreadedBroker) -> None:
    """Placed lazily with more replicas than nodes running (partitions added while a node is
    down): no leader for now, LEADER_NOT_AVAILABLE in Metadata, not a dropped connection."""
    cluster.create_topic("grown", partitions=1, replication_factor=3)
    cluster.stop_node(3)
    connection = _connect(cluster, 1)
    grown = connection.request(ApiKey.CREATE_PARTITIONS, 3, {"topics": [{"name": "grown", "count": 2, "assignments": None}],
                                                             "timeout_ms": 5000, "validate_only": False})
    assert grown["results"][0]["error_code"] == ErrorCode.NONE
    metadata = connection.request(ApiKey.METADATA, 12, {"topics": [{"name": "grown", "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                                        "include_topic_authorized_operations": False})
    connection.close()
    errors = {p["partition_index"]: p["error_code"] for p in metadata["topics"][0]["partitions"]}
    assert errors[1] == ErrorCode.LEADER_NOT_AVAILABLE
    cluster.start_node(3)
    assert cluster.partition_state("grown", 1)["leader"] != -1


def test_each_coordinator_lists_and_describes_only_its_own_groups(cluster: ThreadedBroker) -> None:
    """A client asking every node for its groups (AdminClient.listConsumerGroups) sees each
    once, and a node that does not coordinate a group answers NOT_COORDINATOR for it, as
    Kafka's group coordinators do."""
    cluster.create_topic("offsets-of", partitions=1)
    finder = _connect(cluster, 1)
    coordinator = finder.request(ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["listed"]})["coordinators"][0]["node_id"]
    finder.close()
    owner = _connect(cluster, coordinator)
    committed = owner.request(ApiKey.OFFSET_COMMIT, 2, {"group_id": "listed", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": -1,
                                                       "topics": [{"name": "offsets-of", "partitions": [{"partition_index": 0, "committed_offset": 1,
                                                                                                        "committed_metadata": ""}]}]})
    owner.close()
    assert committed["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
    listing, described = {}, {}
    for node in (1, 2, 3):
        connection = _connect(cluster, node)
        listing[node] = [g["group_id"] for g in connection.request(ApiKey.LIST_GROUPS, 4, {"states_filter": []})["groups"]]
        described[node] = connection.request(ApiKey.DESCRIBE_GROUPS, 5, {"groups": ["listed"], "include_authorized_operations": False})["groups"][0]["error_code"]
        connection.close()
    assert {node: "listed" in groups for node, groups in listing.items()} == {node: node == coordinator for node in (1, 2, 3)}
    assert described == {node: ErrorCode.NONE if node == coordinator else ErrorCode.NOT_COORDINATOR for node in (1, 2, 3)}


def _coordinator(cluster: ThreadedBroker, key_type: int, key: str) -> int:
    finder = _connect(cluster, 1)
    try:
        return int(finder.request(ApiKey.FIND_COORDINATOR, 4, {"key_type": key_type, "coordinator_keys": [key]})["coordinators"][0]["node_id"])
    finally:
        finder.close()


def test_each_coordinator_answers_only_for_its_own_groups_and_transactions(cluster: ThreadedBroker) -> None:
    """The describe APIs of every group type, the share group offset APIs, a streams heartbeat
    and DescribeTransactions answer NOT_COORDINATOR on a node that does not coordinate the key,
    and ListTransactions lists a transaction only on its coordinator, as Kafka's coordinators
    (each the leader of the key's partition) do."""
    group, transactional_id = "elsewhere", "listed-txn"
    group_node, txn_node = _coordinator(cluster, 0, group), _coordinator(cluster, 1, transactional_id)
    owner = _connect(cluster, txn_node)
    initialized = owner.request(ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": transactional_id, "transaction_timeout_ms": 60_000,
                                                            "producer_id": -1, "producer_epoch": -1})
    owner.close()
    assert initialized["error_code"] == ErrorCode.NONE
    heartbeat = {"group_id": group, "member_id": "m", "member_epoch": 0, "endpoint_information_epoch": 0, "instance_id": None, "rack_id": None,
                 "rebalance_timeout_ms": 30_000, "topology": {"epoch": 0, "subtopologies": []}, "active_tasks": [], "standby_tasks": [],
                 "warmup_tasks": [], "process_id": "p", "user_endpoint": None, "client_tags": None, "task_offsets": None, "task_end_offsets": None,
                 "shutdown_application": False}
    for node in (1, 2, 3):
        connection = _connect(cluster, node)
        answers = {
            "consumer": connection.request(ApiKey.CONSUMER_GROUP_DESCRIBE, 1, {"group_ids": [group], "include_authorized_operations": False})["groups"][0],
            "share": connection.request(ApiKey.SHARE_GROUP_DESCRIBE, 1, {"group_ids": [group], "include_authorized_operations": False})["groups"][0],
            "streams": connection.request(ApiKey.STREAMS_GROUP_DESCRIBE, 0, {"group_ids": [group], "include_authorized_operations": False})["groups"][0],
            "share offsets": connection.request(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 1, {"groups": [{"group_id": group, "topics": None}]})["groups"][0],
            "alter share offsets": connection.request(ApiKey.ALTER_SHARE_GROUP_OFFSETS, 0, {"group_id": group, "topics": []}),
            "delete share offsets": connection.request(ApiKey.DELETE_SHARE_GROUP_OFFSETS, 0, {"group_id": group, "topics": []}),
            "streams heartbeat": connection.request(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, heartbeat),
        }
        transaction = connection.request(ApiKey.DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": [transactional_id]})["transaction_states"][0]
        listed = connection.request(ApiKey.LIST_TRANSACTIONS, 1, {"state_filters": [], "producer_id_filters": [], "duration_filter": -1})
        connection.close()
        if node == group_node:
            assert ErrorCode.NOT_COORDINATOR not in {answer["error_code"] for answer in answers.values()}, answers
        else:
            assert {name: answer["error_code"] for name, answer in answers.items()} == dict.fromkeys(answers, ErrorCode.NOT_COORDINATOR)
        assert transaction["error_code"] == (ErrorCode.NONE if node == txn_node else ErrorCode.NOT_COORDINATOR)
        assert [t["transactional_id"] for t in listed["transaction_states"]] == ([transactional_id] if node == txn_node else [])


def test_acks_all_needs_min_insync_replicas_and_preferred_election_moves_leadership_back(cluster: ThreadedBroker) -> None:
    cluster.create_topic("durable", partitions=1, replication_factor=3, min_insync_replicas=2)
    state = cluster.partition_state("durable", 0)
    preferred, second, third = state["replicas"]
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, acks="all", retries=3, retry_backoff_ms=100)
    try:
        assert producer.send("durable", b"before").get(timeout=30).offset == 0
        cluster.stop_node(preferred)
        assert cluster.partition_state("durable", 0)["leader"] == second
        assert producer.send("durable", b"one down").get(timeout=30).offset == 1
        cluster.stop_node(second)
        moved = cluster.partition_state("durable", 0)
        assert (moved["leader"], moved["isr"], sorted(moved["offline"])) == (third, [third], sorted([preferred, second]))
        with pytest.raises(NotEnoughReplicasError):
            producer.send("durable", b"two down").get(timeout=30)
    finally:
        producer.close()
    cluster.start_node(preferred)
    cluster.start_node(second)
    back = cluster.partition_state("durable", 0)
    assert back["leader"] == third and back["leader_epoch"] == 2 and sorted(back["isr"]) == sorted(state["replicas"])
    connection = _connect(cluster, 1)
    elect = {"election_type": 0, "topic_partitions": [{"topic": "durable", "partitions": [0]}], "timeout_ms": 5000}
    result = connection.request(ApiKey.ELECT_LEADERS, 2, elect)["replica_election_results"][0]["partition_result"][0]
    assert result["error_code"] == ErrorCode.NONE
    assert connection.request(ApiKey.ELECT_LEADERS, 2, elect)["replica_election_results"][0]["partition_result"][0]["error_code"] == ErrorCode.ELECTION_NOT_NEEDED
    # OffsetForLeaderEpoch tells where each epoch ended: 0 at 1, 1 at 2 (epoch 2 had no writes).
    epochs = {"replica_id": -1, "topics": [{"topic": "durable", "partitions": [
        {"partition": 0, "current_leader_epoch": -1, "leader_epoch": epoch} for epoch in (0, 1, 3)]}]}
    leader = _connect(cluster, preferred)
    answered = leader.request(ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, epochs)["topics"][0]["partitions"]
    assert [(p["leader_epoch"], p["end_offset"]) for p in answered] == [(0, 1), (1, 2), (3, 2)]
    leader.close()
    connection.close()
    assert cluster.partition_state("durable", 0)["leader"] == preferred


def test_a_follower_checks_the_clients_leader_epoch_before_its_leadership(cluster: ThreadedBroker) -> None:
    """Partition.localLogWithEpochOrThrow: a replica that does not lead answers a client's
    stale or future leader epoch FENCED_LEADER_EPOCH or UNKNOWN_LEADER_EPOCH before
    NOT_LEADER_OR_FOLLOWER; a node without a replica answers NOT_LEADER_OR_FOLLOWER."""
    cluster.create_topic("epochs", partitions=1, replication_factor=2)
    state = cluster.partition_state("epochs", 0)
    stranger = next(node for node in (1, 2, 3) if node not in state["replicas"])
    cluster.stop_node(state["leader"])
    cluster.start_node(state["leader"])
    moved = cluster.partition_state("epochs", 0)
    assert moved["leader_epoch"] >= 1
    answers: dict[int, list[int]] = {}
    for node in (1, 2, 3):
        connection = _connect(cluster, node)
        for claimed in (moved["leader_epoch"] - 1, moved["leader_epoch"] + 1, -1):
            epoch_end = connection.request(ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, {"replica_id": -1, "topics": [{"topic": "epochs", "partitions": [
                {"partition": 0, "current_leader_epoch": claimed, "leader_epoch": 0}]}]})["topics"][0]["partitions"][0]["error_code"]
            listed = connection.request(ApiKey.LIST_OFFSETS, 7, {"replica_id": -1, "isolation_level": 0, "topics": [{"name": "epochs", "partitions": [
                {"partition_index": 0, "current_leader_epoch": claimed, "timestamp": -1}]}]})["topics"][0]["partitions"][0]["error_code"]
            assert listed == epoch_end, (node, claimed)
            answers.setdefault(node, []).append(epoch_end)
        connection.close()
    not_leader = ErrorCode.NOT_LEADER_FOR_PARTITION
    other_replica = next(node for node in moved["replicas"] if node != moved["leader"])
    assert answers[moved["leader"]] == [ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.UNKNOWN_LEADER_EPOCH, ErrorCode.NONE]
    assert answers[other_replica] == [ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.UNKNOWN_LEADER_EPOCH, not_leader]
    assert answers[stranger] == [not_leader] * 3


def test_create_topics_refuses_more_replicas_than_nodes(cluster: ThreadedBroker) -> None:
    connection = _connect(cluster, 2)
    body = {"topics": [{"name": "wide", "num_partitions": 1, "replication_factor": 4, "assignments": [], "configs": []}], "timeout_ms": 5000, "validate_only": False}
    answered = connection.request(ApiKey.CREATE_TOPICS, 7, body)["topics"][0]
    body["topics"][0]["replication_factor"] = 3
    created = connection.request(ApiKey.CREATE_TOPICS, 7, body)["topics"][0]
    connection.close()
    assert answered["error_code"] == ErrorCode.INVALID_REPLICATION_FACTOR
    assert (created["error_code"], created["replication_factor"]) == (ErrorCode.NONE, 3)


def test_an_isolated_node_accepts_connections_and_never_answers(cluster: ThreadedBroker) -> None:
    cluster.create_topic("cut", partitions=1, replication_factor=3)
    leader = cluster.leader_of("cut", 0)
    cluster.isolate_node(leader)
    assert cluster.leader_of("cut", 0) != leader
    with socket.create_connection(_addresses(cluster)[leader], timeout=0.5) as sock:
        sock.sendall(encode_request(ApiKey.API_VERSIONS, 0, 1, {}, client_id="cluster-test"))
        with pytest.raises(TimeoutError):
            sock.recv(1)
    cluster.start_node(leader)
    connection = _connect(cluster, leader)  # answers again
    connection.close()


def test_idempotent_producer_and_consumer_group_ride_out_a_leader_stop(cluster: ThreadedBroker) -> None:
    """confluent-kafka with enable.idempotence, a consumer group reading all the while: every
    acknowledged record arrives once, in order per partition, across a stop and a restart."""
    cluster.create_topic("orders", partitions=3, replication_factor=3, min_insync_replicas=2)
    acked: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    failures: list[Any] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            failures.append(error)
        else:
            acked[message.partition()].append(message.value())

    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "enable.idempotence": True, "linger.ms": 5})
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "g", "auto.offset.reset": "earliest",
                         "enable.auto.commit": True, "auto.commit.interval.ms": 100})
    consumer.subscribe(["orders"])
    seen: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    done = threading.Event()

    def consume() -> None:
        while not done.is_set() or sum(map(len, seen.values())) < sum(map(len, acked.values())):
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                seen[message.partition()].append(message.value())
            elif message is not None and message.error().code() != KafkaError._PARTITION_EOF:
                pass  # retriable errors during the outage: the client recovers by itself

    reader = threading.Thread(target=consume)
    reader.start()
    leader = cluster.leader_of("orders", 0)
    for number in range(600):
        producer.produce("orders", str(number).encode(), partition=number % 3, on_delivery=delivered)
        producer.poll(0)
        if number == 200:
            cluster.stop_node(leader)
        if number == 400:
            cluster.start_node(leader)
        if number % 50 == 0:
            time.sleep(0.05)
    assert producer.flush(60) == 0
    done.set()
    reader.join(60)
    consumer.close()
    assert not failures
    assert sum(map(len, acked.values())) == 600
    for partition in range(3):
        assert seen[partition] == acked[partition]
        assert [int(value) for value in acked[partition]] == sorted(int(value) for value in acked[partition])


def test_the_coordinator_is_the_leader_of_the_key_partition_and_moves_with_it(cluster: ThreadedBroker) -> None:
    def find(node: int, key: str, key_type: int = 0) -> dict[str, Any]:
        connection = _connect(cluster, node)
        try:
            return connection.request(ApiKey.FIND_COORDINATOR, 4, {"key_type": key_type, "coordinator_keys": [key]})["coordinators"][0]
        finally:
            connection.close()

    answers = [find(node, "g") for node in (1, 2, 3)]
    coordinator = answers[0]["node_id"]
    assert all(answer["node_id"] == coordinator and answer["error_code"] == ErrorCode.NONE for answer in answers)
    assert len({find(1, f"group-{n}")["node_id"] for n in range(20)}) == 3  # 50 partitions spread them
    assert find(2, "txn", key_type=1)["error_code"] == ErrorCode.NONE
    other = next(node for node in (1, 2, 3) if node != coordinator)
    connection = _connect(cluster, other)
    heartbeat = connection.request(ApiKey.HEARTBEAT, 4, {"group_id": "g", "generation_id": 1, "member_id": "m", "group_instance_id": None})
    connection.close()
    assert heartbeat["error_code"] == ErrorCode.NOT_COORDINATOR
    cluster.create_topic("coordinated", 1, replication_factor=3)
    connection = _connect(cluster, coordinator)
    committed = connection.request(ApiKey.OFFSET_COMMIT, 8, {
        "group_id": "g", "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
        "topics": [{"name": "coordinated", "partitions": [
            {"partition_index": 0, "committed_offset": 5, "committed_leader_epoch": -1, "committed_metadata": ""}]}]})
    connection.close()
    assert committed["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
    cluster.stop_node(coordinator)
    moved = find(other, "g")
    assert moved["error_code"] == ErrorCode.NONE and moved["node_id"] not in (coordinator, -1)
    # The nodes share the coordinators: the new one has the group's state at once, where Kafka's
    # would answer COORDINATOR_LOAD_IN_PROGRESS while it replays the partition.
    connection = _connect(cluster, moved["node_id"])
    fetched = connection.request(ApiKey.OFFSET_FETCH, 7, {"group_id": "g", "topics": [{"name": "coordinated", "partition_indexes": [0]}], "require_stable": False})
    connection.close()
    assert fetched["error_code"] == ErrorCode.NONE
    assert [(p["partition_index"], p["committed_offset"], p["error_code"]) for p in fetched["topics"][0]["partitions"]] == [(0, 5, ErrorCode.NONE)]


def test_a_group_is_deleted_only_by_its_coordinator(cluster: ThreadedBroker) -> None:
    """DeleteGroups names many groups, so no coordinator check answers it whole: each group is
    NOT_COORDINATOR on a node that does not coordinate it (Kafka answers per group), and stays;
    over a shared database that node's copy of the group is not the record."""
    cluster.create_topic("kept", 1, replication_factor=3)

    def call(node: int, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
        connection = _connect(cluster, node)
        try:
            return connection.request(api, version, body)
        finally:
            connection.close()

    coordinator = call(1, ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["doomed"]})["coordinators"][0]["node_id"]
    other = next(node for node in (1, 2, 3) if node != coordinator)
    committed = call(coordinator, ApiKey.OFFSET_COMMIT, 8, {
        "group_id": "doomed", "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
        "topics": [{"name": "kept", "partitions": [{"partition_index": 0, "committed_offset": 3, "committed_leader_epoch": -1, "committed_metadata": ""}]}]})
    assert committed["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE

    def deleted(node: int) -> list[tuple[str, int]]:
        answer = call(node, ApiKey.DELETE_GROUPS, 2, {"groups_names": ["doomed", "doomed-never-was"]})
        return [(result["group_id"], result["error_code"]) for result in answer["results"]]

    never_here = call(other, ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["doomed-never-was"]})["coordinators"][0]["node_id"] == other
    # In Kafka's order, by offsets partition (test_group_deletion_orders.py): compared as a set.
    assert sorted(deleted(other)) == [("doomed", ErrorCode.NOT_COORDINATOR),
                                      ("doomed-never-was", ErrorCode.GROUP_ID_NOT_FOUND if never_here else ErrorCode.NOT_COORDINATOR)]
    fetched = call(coordinator, ApiKey.OFFSET_FETCH, 7, {"group_id": "doomed", "topics": [{"name": "kept", "partition_indexes": [0]}], "require_stable": False})
    assert fetched["topics"][0]["partitions"][0]["committed_offset"] == 3
    assert ("doomed", ErrorCode.NONE) in deleted(coordinator)
    fetched = call(coordinator, ApiKey.OFFSET_FETCH, 7, {"group_id": "doomed", "topics": [{"name": "kept", "partition_indexes": [0]}], "require_stable": False})
    assert fetched["topics"][0]["partitions"][0]["committed_offset"] == -1


def test_a_consumer_group_carries_on_when_its_coordinator_stops(cluster: ThreadedBroker) -> None:
    cluster.create_topic("work", partitions=3, replication_factor=3)
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
    for number in range(300):
        producer.produce("work", str(number).encode(), partition=number % 3)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "steady", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe(["work"])
    seen: list[bytes] = []
    while len(seen) < 150:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            seen.append(message.value())
    consumer.commit(asynchronous=False)
    connection = _connect(cluster, 1)
    coordinator = connection.request(ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["steady"]})["coordinators"][0]["node_id"]
    connection.close()
    cluster.stop_node(coordinator)
    while len(seen) < 300:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            seen.append(message.value())
    consumer.commit(asynchronous=False)
    consumer.close()
    assert sorted(int(value) for value in seen) == list(range(300))


def test_kafka_python_producer_and_group_ride_out_a_leader_stop_and_restart(cluster: ThreadedBroker) -> None:
    """kafka-python: an idempotent acks=all producer and a consumer group, while the leader of
    every partition stops and comes back; each acknowledged record is read once, in order."""
    from kafka import KafkaConsumer

    cluster.create_topic("ledger", partitions=2, replication_factor=3, min_insync_replicas=2)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, acks="all", enable_idempotence=True, retry_backoff_ms=50)
    consumer = KafkaConsumer("ledger", bootstrap_servers=cluster.bootstrap_servers, group_id="ledger-readers", auto_offset_reset="earliest")
    acked: dict[int, list[int]] = {0: [], 1: []}
    stopped = 0
    for number in range(200):
        if number in (50, 130):
            stopped = cluster.leader_of("ledger", 0 if number == 50 else 1)
            cluster.stop_node(stopped)
        if number in (100, 180):
            cluster.start_node(stopped)
        metadata = producer.send("ledger", str(number).encode(), partition=number % 2).get(timeout=30)
        acked[metadata.partition].append(number)
    producer.close()
    seen: dict[int, list[int]] = {0: [], 1: []}
    deadline = time.monotonic() + 60
    while sum(map(len, seen.values())) < 200 and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for message in records:
                seen[message.partition].append(int(message.value))
    consumer.close()
    assert seen == acked


def test_create_partitions_places_new_partitions_on_the_named_nodes(cluster: ThreadedBroker) -> None:
    cluster.create_topic("grow", partitions=1, replication_factor=2)
    connection = _connect(cluster, 3)
    body = {"topics": [{"name": "grow", "count": 3, "assignments": [{"broker_ids": [3, 1]}, {"broker_ids": [2, 2]}]}], "timeout_ms": 5000, "validate_only": False}
    refused = connection.request(ApiKey.CREATE_PARTITIONS, 3, body)["results"][0]
    body["topics"][0]["assignments"] = [{"broker_ids": [3, 1]}, {"broker_ids": [2, 3]}]
    grown = connection.request(ApiKey.CREATE_PARTITIONS, 3, body)["results"][0]
    connection.close()
    assert refused["error_code"] == ErrorCode.INVALID_REPLICATION_ASSIGNMENT
    assert grown["error_code"] == ErrorCode.NONE
    assert [(s["replicas"], s["leader"]) for s in (cluster.partition_state("grow", index) for index in (1, 2))] == [([3, 1], 3), ([2, 3], 2)]
