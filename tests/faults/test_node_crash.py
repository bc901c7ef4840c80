"""A crashed node (`crash_node`), as a killed Kafka broker: unreachable at once, yet registered,
leading and in the ISR until `broker.session.timeout.ms` passes; then it is fenced and its
partitions elect new leaders, and a stock client that kept failing to reach it recovers. A
crashed follower holds the high watermark where it crashed until then: acks=all produces wait
for the fence (or time out), and consumers read no further.
Contrast `stop_node`, Kafka's controlled shutdown: leadership moves at once, and the node stays
listed and answering for `broker.heartbeat.interval.ms` before it closes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from typing import Iterator

import pytest
from confluent_kafka import KafkaError, Producer
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaConnectionError

from ottla.server.admin.client import Connection
from ottla.server.cluster import NodeState
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records.record import Record, build_batch

# Short enough for the suite, long enough that the checks made right after a crash or a stop
# begins land inside its window even on a loaded machine.
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 6000
DEADLINE_S = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThreadedBroker]:
    """Three nodes, with the HTTP control channel `ottla cluster` speaks."""
    with running_broker(nodes=3, data_dir=None, broker_session_timeout_ms=SESSION_TIMEOUT_MS,
                        broker_heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS, http_port=_free_port()) as cluster:
        yield cluster


def _metadata(bootstrap: str, topic: str) -> tuple[int, dict[int, int]]:
    """Partition 0's leader and the listed brokers' ports by node id, as a client's Metadata shows them.
    Asked again when kafka-python's admin client picks a listed but crashed node to ask: it does
    not try another."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
        try:
            (described,) = admin.describe_topics([topic])
            ports = {broker["broker_id"]: broker["port"] for broker in admin.describe_cluster()["brokers"]}
            break
        except KafkaConnectionError:
            if time.monotonic() > deadline:
                raise
        finally:
            admin.close()
    (partition,) = described["partitions"]
    return partition["leader_id"], ports


def _bootstrap_without(cluster: ThreadedBroker, node: int) -> str:
    """The other nodes' addresses: kafka-python's admin client gives up on a refused bootstrap."""
    return ",".join(address for each, address in enumerate(cluster.bootstrap_servers.split(","), 1) if each != node)


def _refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.slow
def test_a_crashed_leader_leads_until_its_session_times_out_and_the_producer_recovers(cluster: ThreadedBroker) -> None:
    cluster.create_topic("crashed", 1, replication_factor=3, min_insync_replicas=2)
    leader, ports = _metadata(cluster.bootstrap_servers, "crashed")
    port = ports[leader]
    transport_errors: list[KafkaError] = []
    reports: list[tuple[int, KafkaError | None]] = []
    producer = Producer({
        "bootstrap.servers": cluster.bootstrap_servers, "enable.idempotence": True, "acks": "all",
        "retry.backoff.ms": 100, "reconnect.backoff.max.ms": 500,
        "error_cb": lambda error: transport_errors.append(error) if error.code() == KafkaError._TRANSPORT else None,
    })
    report = lambda error, message: reports.append((message.offset(), error))  # noqa: E731
    producer.produce("crashed", b"before", partition=0, on_delivery=report)
    producer.flush(DEADLINE_S)
    assert reports == [(0, None)]

    cluster.crash_node(leader)
    # The window: the node is gone, but the cluster has not noticed.
    state = cluster.partition_state("crashed", 0)
    assert (state["leader"], state["leader_epoch"], leader in state["isr"], state["offline"]) == (leader, 0, True, [])
    assert _metadata(_bootstrap_without(cluster, leader), "crashed") == (leader, ports)
    assert _refuses_connections(port)

    producer.produce("crashed", b"through", partition=0, on_delivery=report)
    deadline = time.monotonic() + DEADLINE_S
    while len(reports) < 2 and time.monotonic() < deadline:
        producer.poll(0.2)
    producer.flush(DEADLINE_S)

    # Fenced: a new leader in a new epoch, which the producer found by itself.
    state = cluster.partition_state("crashed", 0)
    assert state["leader"] != leader and state["leader_epoch"] == 1 and state["offline"] == [leader]
    assert reports == [(0, None), (1, None)]
    assert any(f":{port}/" in error.str() for error in transport_errors), [error.str() for error in transport_errors]
    assert _metadata(_bootstrap_without(cluster, leader), "crashed")[0] == state["leader"]

    cluster.start_node(leader)
    assert leader in cluster.partition_state("crashed", 0)["isr"]
    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap_servers, enable_auto_commit=False, consumer_timeout_ms=10000)
    consumer.assign([TopicPartition("crashed", 0)])
    consumer.seek_to_beginning()
    assert [message.value for _, message in zip(range(2), consumer)] == [b"before", b"through"]
    consumer.close()


@pytest.mark.slow
def test_a_crashed_follower_holds_acks_all_and_the_high_watermark_until_the_fence(cluster: ThreadedBroker) -> None:
    """Kafka's crash window seen from a follower: the crashed node stays in the ISR, so the high
    watermark stays where it crashed; an acks=all delivery completes only once the fence takes
    it out of the ISR, and a consumer reads nothing above the frozen high watermark before that."""
    cluster.create_topic("held", 1, replication_factor=3, min_insync_replicas=2)
    state = cluster.partition_state("held", 0)
    follower = next(node for node in state["replicas"] if node != state["leader"])
    reports: list[tuple[int, KafkaError | None, NodeState]] = []
    nodes = cluster.broker.cluster.nodes
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "enable.idempotence": True, "acks": "all"})
    report = lambda error, message: reports.append((message.offset(), error, nodes[follower].state))  # noqa: E731
    producer.produce("held", b"before", partition=0, on_delivery=report)
    producer.flush(DEADLINE_S)
    assert reports == [(0, None, NodeState.RUNNING)]

    cluster.crash_node(follower)
    producer.produce("held", b"held", partition=0, on_delivery=report)
    log = cluster.broker.storage.partition("held", 0)
    deadline = time.monotonic() + DEADLINE_S
    while log.log_end_offset < 2 and time.monotonic() < deadline:
        producer.poll(0.05)
    # Appended by the leader, not acknowledged, and not readable: the high watermark is frozen.
    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=100)
    held = TopicPartition("held", 0)
    consumer.assign([held])
    consumer.seek_to_beginning()
    seen: list[tuple[int, bytes]] = []
    while not seen and time.monotonic() < deadline:
        seen += [(record.offset, record.value) for records in consumer.poll(200).values() for record in records]
    assert consumer.end_offsets([held]) == {held: 1}
    seen += [(record.offset, record.value) for records in consumer.poll(200).values() for record in records]
    assert nodes[follower].state is NodeState.CRASHED, "the window closed before the checks: rerun on a quieter machine"
    assert seen == [(0, b"before")] and reports == [(0, None, NodeState.RUNNING)]

    producer.flush(DEADLINE_S)
    assert reports[1] == (1, None, NodeState.STOPPED)
    while len(seen) < 2 and time.monotonic() < deadline:
        seen += [(record.offset, record.value) for records in consumer.poll(200).values() for record in records]
    assert seen == [(0, b"before"), (1, b"held")]
    consumer.close()
    cluster.start_node(follower)


@pytest.mark.slow
def test_a_parked_acks_all_produce_times_out_or_learns_the_isr_shrank_below_min_insync(cluster: ThreadedBroker) -> None:
    """Kafka's DelayedProduce answers: REQUEST_TIMED_OUT at the request's timeout, the append
    kept; NOT_ENOUGH_REPLICAS_AFTER_APPEND when the fence leaves fewer than min.insync.replicas."""
    cluster.create_topic("shrunk", 1, replication_factor=2, min_insync_replicas=2)
    leader, follower = cluster.partition_state("shrunk", 0)["replicas"]
    host, port = cluster.bootstrap_servers.split(",")[leader - 1].rsplit(":", 1)
    connection = Connection(host, int(port), DEADLINE_S, "crash-test")

    def produce(value: bytes, timeout_ms: int) -> tuple[int, int]:
        batch = build_batch([Record(offset=0, timestamp=int(time.time() * 1000), key=None, value=value, headers=())])
        body = {"transactional_id": None, "acks": -1, "timeout_ms": timeout_ms,
                "topic_data": [{"name": "shrunk", "partition_data": [{"index": 0, "records": batch}]}]}
        (answer,) = connection.request(ApiKey.PRODUCE, 11, body)["responses"][0]["partition_responses"]
        return answer["error_code"], answer["base_offset"]

    try:
        cluster.crash_node(follower)
        assert produce(b"timed out", 100) == (ErrorCode.REQUEST_TIMED_OUT, 0)
        assert produce(b"parked", 2 * SESSION_TIMEOUT_MS) == (ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, 1)
        assert cluster.partition_state("shrunk", 0)["isr"] == [leader]
    finally:
        connection.close()
        cluster.start_node(follower)


def test_ottla_cluster_crash_node_and_a_stop_in_the_window_fences_at_once(cluster: ThreadedBroker) -> None:
    cluster.create_topic("stopped", 1, replication_factor=3)
    leader = cluster.leader_of("stopped", 0)
    running = _bootstrap_without(cluster, leader)
    command = [sys.executable, "-m", "ottla", "cluster", "crash-node", str(leader), "--bootstrap", running, "--json"]
    crashed = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert crashed.returncode == 0, crashed.stderr
    assert {node["node_id"]: node["state"] for node in json.loads(crashed.stdout)}[leader] == "crashed"
    assert cluster.leader_of("stopped", 0) == leader
    with pytest.raises(ValueError, match="is crashed, not running"):
        cluster.crash_node(leader)
    cluster.stop_node(leader)
    state = cluster.partition_state("stopped", 0)
    assert state["leader"] != leader and state["offline"] == [leader]
    cluster.start_node(leader)


@pytest.mark.slow
def test_a_stopped_leader_hands_over_while_it_still_answers_then_closes(cluster: ThreadedBroker) -> None:
    cluster.create_topic("handed-over", 1, replication_factor=3)
    leader, ports = _metadata(cluster.bootstrap_servers, "handed-over")
    stopping = threading.Thread(target=cluster.stop_node, args=(leader,))
    stopping.start()
    try:
        deadline = time.monotonic() + DEADLINE_S
        while cluster.broker.cluster.nodes[leader].state is not NodeState.SHUTTING_DOWN and time.monotonic() < deadline:
            time.sleep(0.01)
        state = cluster.partition_state("handed-over", 0)
        assert state["leader"] != leader and leader not in state["isr"] and state["offline"] == []
        # Asked through the node itself: it answers, lists itself, and names the new leader.
        assert _metadata(f"127.0.0.1:{ports[leader]}", "handed-over") == (state["leader"], ports)
    finally:
        stopping.join()
    assert _refuses_connections(ports[leader])
    assert cluster.partition_state("handed-over", 0)["offline"] == [leader]
    cluster.start_node(leader)
